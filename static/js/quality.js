// Connection quality per remote tile, from getStats() every few seconds: round-trip time (the
// selected candidate pair), packets lost and the bitrate of what we receive from that peer
// (all inbound RTP streams, since the last poll). A small signal-bars icon on the tile says
// good / fair / poor; its tooltip and label say it in plain words with the numbers
// ("Good connection — 40 ms, 0 % lost, 1.2 Mbit/s"). Peers that left are not polled again.
//
// Test hooks: the tile's data-quality = unknown|good|fair|poor, and inside it
// [data-testid=quality] (title and aria-label = the words).

import { h, setAttrText } from './common.js';
import { getLang } from './i18n.js';

export const POLL_MS = 3000;

const SVG = 'http://www.w3.org/2000/svg';

function barsIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'quality-bars');
  svg.setAttribute('aria-hidden', 'true');
  [[2, 10, 3], [6.5, 6.5, 6.5], [11, 3, 10]].forEach(([x, y, hgt], i) => {
    const r = document.createElementNS(SVG, 'rect');
    for (const [k, v] of Object.entries({ x, y, width: 3, height: hgt, rx: 1 })) r.setAttribute(k, String(v));
    r.setAttribute('class', `bar bar-${i + 1}`);
    svg.append(r);
  });
  return svg;
}

/** good / fair / poor from the round trip (ms) and the share of packets lost (%). */
export function levelOf(rttMs, lossPct) {
  if (rttMs > 400 || lossPct > 8) return 'poor';
  if (rttMs > 150 || lossPct > 2) return 'fair';
  return 'good';
}

/** What one getStats() report says, in totals: {at (ms), rtt (s) | null, lost, received, bytes}. */
export function readReport(report) {
  let pair = null;
  let transportPair = null;
  let rtt = null;
  let lost = 0, received = 0, bytes = 0, at = 0;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) transportPair = s.selectedCandidatePairId;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && !pair) pair = s;
    if (s.type === 'inbound-rtp') {
      lost += Math.max(0, s.packetsLost || 0);
      received += s.packetsReceived || 0;
      bytes += s.bytesReceived || 0;
      at = Math.max(at, s.timestamp || 0);
    }
    if (s.type === 'remote-inbound-rtp' && typeof s.roundTripTime === 'number' && rtt === null) rtt = s.roundTripTime;
  });
  if (transportPair && report.get(transportPair)) pair = report.get(transportPair);
  if (pair && typeof pair.currentRoundTripTime === 'number') rtt = pair.currentRoundTripTime;
  return { at: at || performance.timeOrigin + performance.now(), rtt, lost, received, bytes };
}

export class QualityMonitor {
  /** pcOf(peerId) → RTCPeerConnection | null; tileOf(peerId) → element | null; peers() → ids. */
  constructor({ pcOf, tileOf, peers }) {
    this.o = { pcOf, tileOf, peers };
    this.last = new Map(); // peerId → previous totals
    this.timer = 0;
  }

  start() {
    this.stop();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.poll();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    this.last.clear();
  }

  async poll() {
    const ids = new Set(this.o.peers());
    for (const id of [...this.last.keys()]) if (!ids.has(id)) this.last.delete(id);
    await Promise.all([...ids].map((id) => this._one(id).catch(() => {})));
  }

  async _one(id) {
    const pc = this.o.pcOf(id);
    const tile = this.o.tileOf(id);
    if (!tile) return;
    const mark = this._mark(tile);
    if (!pc || pc.connectionState !== 'connected') { this.last.delete(id); return show(tile, mark, null); }
    const now = readReport(await pc.getStats());
    if (!this.timer) return; // stopped meanwhile
    const prev = this.last.get(id);
    this.last.set(id, now);
    if (!prev || now.at <= prev.at) return show(tile, mark, prev ? null : undefined);
    const secs = (now.at - prev.at) / 1000;
    const dLost = Math.max(0, now.lost - prev.lost);
    const dRecv = Math.max(0, now.received - prev.received);
    const loss = dLost + dRecv ? (100 * dLost) / (dLost + dRecv) : 0;
    const rate = Math.max(0, (now.bytes - prev.bytes) * 8) / secs; // bit/s
    const rttMs = now.rtt === null ? 0 : Math.round(now.rtt * 1000);
    show(tile, mark, { rttMs, loss, rate });
  }

  _mark(tile) {
    let mark = tile.querySelector('[data-testid="quality"]');
    if (!mark) {
      mark = h('span', { class: 'tile-quality', 'data-testid': 'quality', role: 'img', tabindex: '0' }, barsIcon());
      const bar = tile.querySelector('.tile-bar');
      if (bar) bar.prepend(mark); else tile.append(mark);
      show(tile, mark, undefined);
    }
    return mark;
  }
}

/** Shows measured numbers on a tile (demo mode): m = {rttMs, loss (%), rate (bit/s)}. */
export function showQuality(tile, m) {
  const mark = QualityMonitor.prototype._mark.call(null, tile);
  show(tile, mark, m);
}

/** m: {rttMs, loss, rate} | null (not connected) | undefined (measuring). */
function show(tile, mark, m) {
  if (!m) {
    tile.dataset.quality = 'unknown';
    mark.dataset.level = 'unknown';
    setAttrText(mark, 'title', 'quality_unknown');
    setAttrText(mark, 'aria-label', 'quality_unknown');
    delete mark.dataset.i18nArgs;
    return;
  }
  const level = levelOf(m.rttMs, m.loss);
  const nf = (n, digits) => new Intl.NumberFormat(getLang(), { maximumFractionDigits: digits }).format(n);
  const mbps = m.rate >= 1e6;
  const args = {
    level: `@quality_${level}`,
    rtt: nf(m.rttMs, 0),
    loss: nf(m.loss, m.loss < 10 ? 1 : 0),
    rate: mbps ? nf(m.rate / 1e6, 1) : nf(m.rate / 1e3, 0),
  };
  const key = mbps ? 'quality_detail_mbps' : 'quality_detail_kbps';
  tile.dataset.quality = level;
  mark.dataset.level = level;
  mark.dataset.i18nArgs = JSON.stringify(args);
  setAttrText(mark, 'title', key, args);
  setAttrText(mark, 'aria-label', key, args);
}
