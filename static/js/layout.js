// Where each tile goes on the stage: a grid, or one large tile and a strip (speaker view), and
// on a phone your own tile as a small picture-in-picture. Pure arithmetic, no DOM: ui.js applies
// the rectangles. Also the active speaker: who is talking, steady enough to follow with the
// large tile (a cough or the fake microphone's beep does not flip it).

/** Fit n tiles as large as possible in W×H: aspect 1:1…16:9 (3:4…16:9 on a tall stage). */
export function fitGrid(n, W, H, gap) {
  const minAspect = H > W ? 3 / 4 : 1;
  let best = { area: -1, w: 0, h: 0, cols: 1, rows: 1 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - gap * (cols - 1)) / cols;
    let h = (H - gap * (rows - 1)) / rows;
    if (w / h > 16 / 9) w = h * 16 / 9;
    if (w / h < minAspect) h = w / minAspect;
    const area = w * h;
    if (area > best.area + 1) best = { area, w: Math.floor(w), h: Math.floor(h), cols, rows };
  }
  return best;
}

/** Rectangles of ids laid out as a centred grid inside (x0, y0, W, H); the last row centred. */
function gridRects(ids, x0, y0, W, H, gap, rects) {
  const { w, h, cols, rows } = fitGrid(ids.length, W, H, gap);
  const top = y0 + (H - (rows * h + (rows - 1) * gap)) / 2;
  ids.forEach((id, i) => {
    const row = Math.floor(i / cols);
    const inRow = row === rows - 1 ? ids.length - row * cols : cols;
    const left = x0 + (W - (inRow * w + (inRow - 1) * gap)) / 2;
    rects.set(id, { x: left + (i % cols) * (w + gap), y: top + row * (h + gap), w, h });
  });
  return w;
}

const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

/**
 * ids: every tile, 'local' (you) among them. main: the tile for the large spot. mode: 'grid' or
 * 'speaker'. phone: a narrow screen (outside the grid view your tile floats as a small, draggable
 * picture). W, H: the
 * stage. Returns {rects: Map id → {x, y, w, h}, offstage: ids not shown (a full strip),
 * more: {x, y, w, h, count} (the "+N" tile that stands for them) or null, pip: 'local' or null,
 * main: the id in the large spot (speaker view) or null, small: ids drawn small}.
 */
export function arrange({ ids, main, mode, phone, W, H, gap }) {
  const rects = new Map();
  const out = { rects, offstage: [], more: null, pip: null, main: null, small: new Set() };
  let rest = ids;
  if (phone && mode !== 'grid' && ids.length >= 2 && ids.includes('local')) {
    out.pip = 'local';
    rest = ids.filter((id) => id !== 'local');
    const w = Math.round(clamp(W * 0.28, 84, 132));
    rects.set('local', { x: 0, y: 0, w, h: Math.round(w * 4 / 3) });
    out.small.add('local');
  }
  // Grid view, everyone alone, or two on a phone (a 2-up).
  if (mode === 'grid' || rest.length === 1 || (phone && rest.length === 2)) {
    const w = gridRects(rest, 0, 0, W, H, gap, rects);
    if (w < 340) for (const id of rest) out.small.add(id);
    return out;
  }
  const big = rest.includes(main) ? main : rest[0];
  out.main = big;
  const others = rest.filter((id) => id !== big);
  const side = !phone && W / H > 1.45; // a wide stage: the strip stands on the right
  let tw, th, fits;
  if (side) {
    tw = Math.round(clamp(W * 0.17, 150, 250));
    th = Math.round(tw * 9 / 16);
    fits = Math.max(1, Math.floor((H + gap) / (th + gap)));
  } else if (phone) {
    // Four to a row: three people and the "+N", or four people.
    tw = Math.floor(clamp((W - 3 * gap) / 4, 72, 120));
    th = Math.round(clamp(H * 0.15, 72, 110));
    fits = Math.max(1, Math.floor((W + gap) / (tw + gap)));
  } else {
    th = Math.round(clamp(H * 0.16, 64, 130));
    tw = Math.round(th * 16 / 9);
    fits = Math.max(1, Math.floor((W + gap) / (tw + gap)));
  }
  const shown = others.length > fits ? others.slice(0, fits - 1) : others;
  out.offstage = others.slice(shown.length);
  const slots = shown.length + (out.offstage.length ? 1 : 0);
  const place = (i) => (side
    ? { x: W - tw, y: (H - (slots * th + (slots - 1) * gap)) / 2 + i * (th + gap), w: tw, h: th }
    : { x: (W - (slots * tw + (slots - 1) * gap)) / 2 + i * (tw + gap), y: H - th, w: tw, h: th });
  shown.forEach((id, i) => { rects.set(id, place(i)); out.small.add(id); });
  if (out.offstage.length) out.more = { ...place(shown.length), count: out.offstage.length };
  rects.set(big, side ? { x: 0, y: 0, w: W - tw - gap, h: H } : { x: 0, y: 0, w: W, h: H - th - gap });
  return out;
}

/** Where the floating self-view sits: a corner ('tl', 'tr', 'bl', 'br') of W×H, `margin` in. */
export function cornerRect(corner, w, h, W, H, margin) {
  return {
    x: corner[1] === 'l' ? margin : W - w - margin,
    y: corner[0] === 't' ? margin : H - h - margin,
  };
}

/** The corner nearest to a point (the centre of a dragged picture). */
export function nearestCorner(cx, cy, W, H) {
  return `${cy < H / 2 ? 't' : 'b'}${cx < W / 2 ? 'l' : 'r'}`;
}

// Active speaker: each remote's loudness is averaged over about a second; someone else takes
// the large spot once they have been clearly the loudest for DWELL_MS on end.
const SPEAKING = 0.015; // averaged level above which someone counts as talking (a quiet room is < 0.01)
const LOUDER = 1.5;     // … and this many times louder than the current speaker
const DWELL_MS = 900;   // … for this long
const GRACE_MS = 500;   // quiet moments shorter than this do not reset the count

export class SpeakerTracker {
  constructor() {
    this.avg = new Map(); // id → averaged level
    this.current = null;
    this.candidate = null;
    this.since = 0;
    this.lastWin = 0;
  }

  /** levels: Map id → level 0…1 now (a muted peer counts as 0). Returns the active speaker. */
  update(levels, now) {
    for (const id of [...this.avg.keys()]) if (!levels.has(id)) this.avg.delete(id);
    let top = null, topAvg = 0;
    for (const [id, level] of levels) {
      const a = (this.avg.get(id) ?? 0) * 0.8 + level * 0.2;
      this.avg.set(id, a);
      if (a > topAvg) { top = id; topAvg = a; }
    }
    if (this.current && !levels.has(this.current)) this.current = null;
    const cur = this.current ? this.avg.get(this.current) : 0;
    const wins = top && top !== this.current && topAvg > SPEAKING && topAvg > cur * LOUDER;
    if (!wins) {
      // A pause between words keeps the candidate; a longer one (or someone else) drops it.
      if (this.candidate && now - this.lastWin > GRACE_MS) this.candidate = null;
      return this.current;
    }
    if (this.candidate !== top) { this.candidate = top; this.since = now; }
    this.lastWin = now;
    if (now - this.since >= DWELL_MS || !this.current) { this.current = top; this.candidate = null; }
    return this.current;
  }
}
