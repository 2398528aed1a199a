// What a routed call shows of each person, told to the server (an SfuSignal `view`): for every
// remote tile on screen, the source it shows (their screen share if they send one, else their
// camera) and its size in device pixels. The server picks the simulcast layer from the height
// and pauses what is not listed: a tile off the stage (the "+N" overflow), scrolled or clipped out
// of sight (IntersectionObserver), of no size, or the page hidden (a background tab, a minimised
// window). Sent after things settle (debounced), and only when it changed.

const SETTLE_MS = 250;   // resizes come in bursts (a window dragged, the chat opening)
const RECHECK_MS = 3000; // and now and then, for anything no observer reported

export class ViewReport {
  /** opts: ui (the CallUI: tiles, grid), sources() → Map peerId → Set of sources, send(tiles) */
  constructor(opts) {
    this.o = opts;
    this.timer = 0;
    this.loop = 0;
    this.last = null; // the tiles last told
    this.seen = new WeakMap(); // tile → intersecting (absent: not told yet, taken as visible)
    this.running = false;
    this.onVisibility = () => this.schedule();
  }

  /** Starts watching (again: the view is sent afresh, to a new connection). */
  start() {
    this.last = null;
    if (this.running) { this.schedule(); return; }
    this.running = true;
    const grid = this.o.ui.grid;
    this.resize = new ResizeObserver(() => this.schedule());
    this.inter = new IntersectionObserver((entries) => {
      for (const e of entries) this.seen.set(e.target, e.isIntersecting);
      this.schedule();
    });
    this.mutations = new MutationObserver(() => { this._observe(); this.schedule(); });
    this.mutations.observe(grid, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-offstage'] });
    this._observe();
    document.addEventListener('visibilitychange', this.onVisibility);
    window.addEventListener('resize', this.onVisibility);
    this.loop = setInterval(() => this.schedule(), RECHECK_MS);
    this.schedule();
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.loop);
    this.resize?.disconnect();
    this.inter?.disconnect();
    this.mutations?.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
    window.removeEventListener('resize', this.onVisibility);
  }

  schedule() {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._send(), SETTLE_MS);
  }

  _observe() {
    for (const [id, el] of this.o.ui.tiles) {
      if (id === 'local' || el.dataset.viewWatched === 'true') continue;
      el.dataset.viewWatched = 'true';
      this.resize.observe(el);
      this.inter.observe(el);
    }
  }

  /** The tiles as the server wants them: [{peer_id, source, width, height}], visible ones only. */
  tiles() {
    const out = [];
    if (document.hidden) return out;
    const sources = this.o.sources();
    const dpr = window.devicePixelRatio || 1;
    for (const [id, el] of this.o.ui.tiles) {
      const has = sources.get(id);
      if (id === 'local' || !has) continue;
      const source = has.has('screen') ? 'screen' : has.has('camera') ? 'camera' : null;
      if (!source || el.dataset.offstage === 'true' || this.seen.get(el) === false) continue;
      const video = el.querySelector('video');
      const r = (video || el).getBoundingClientRect();
      const width = Math.round(r.width * dpr), height = Math.round(r.height * dpr);
      if (width > 0 && height > 0) out.push({ peer_id: id, source, width, height });
    }
    return out.sort((a, b) => (a.peer_id < b.peer_id ? -1 : a.peer_id > b.peer_id ? 1 : 0));
  }

  _send() {
    if (!this.running) return;
    const tiles = this.tiles();
    if (this.last === null && !tiles.length && !this.o.sources().size) return; // nothing to say yet
    if (this.last !== null && same(this.last, tiles)) return;
    if (this.o.send(tiles)) this.last = tiles;
  }
}

/**
 * The same tiles, and no size moved by more than SLACK: a tile growing through a layout
 * transition is told once it settles, not at every step.
 */
const SLACK = 0.08;
function same(a, b) {
  if (a.length !== b.length) return false;
  const near = (x, y) => Math.abs(x - y) <= SLACK * Math.max(x, y);
  return a.every((t, i) => {
    const u = b[i];
    return t.peer_id === u.peer_id && t.source === u.source && near(t.width, u.width) && near(t.height, u.height);
  });
}
