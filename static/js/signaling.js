// WebSocket signaling client (protocol 1): connect, keepalive, close codes, reconnect with
// backoff and resume.
//
// Close codes: reconnect only after 1001 / 1006 / 1011 / 1013 / 4008 (with the resume token, so the call
// survives a network switch). 4401 → refresh the token and reconnect, or sign in again.
// 4003 / 4004 / 4005 / 4006 / 4009 / 4010 / 4011 / 4012 / 4013 / 4029 / 4403 / 1009 → the end, with a reason. A connection that never opened
// (the server answered the upgrade with 401) → ask /api/v1/auth/me whether the token is still good
// before trying again.
//
// Liveness: a ping every second. No answer within 1 s, or the browser's `offline` event: the status
// says 'reconnecting' at once (the call shows its banner) while the socket is probed; anything
// received clears it. Nothing received for 12 s: the socket is given up and the peer resumes on a
// new one, well inside the server's resume grace.

import { ACCESS_CLOSE, passFor } from './roomaccess.js';

export const RECONNECT_CODES = new Set([1001, 1006, 1011, 1013, 4008]);
export const FATAL_CODES = { 4003: 'kicked', 4004: 'room_deleted', 4005: 'room_locked', 4006: 'room_banned', 4009: 'room_full', 4013: 'room_limit', 4029: 'rate_limited', 4403: 'banned', 1009: 'too_big', ...ACCESS_CLOSE };

const PING_EVERY = 1000;    // our ping; the server answers with pong (a few dozen bytes a second)
const PONG_WAIT = 1000;     // no answer this soon: say "reconnecting" while we wait for it (so a
                            // silent network shows within 2 s; a close or `offline` at once)
const STALE_AFTER = 12000;  // nothing received for this long: the socket is dead (network switch);
                            // well inside the server's resume grace (20 s by default)
const BACKOFF_MAX = 15000;

export class Signaling {
  /**
   * opts: room, getToken() → JWT, refreshToken() → Promise<bool>, checkToken() → Promise<'ok'|'invalid'|'unreachable'>,
   * onFrame(frame), onStatus('connecting'|'open'|'reconnecting'|'closed', attempt), onFatal(reason, code), onAuthLost()
   */
  constructor(opts) {
    this.o = opts;
    this.room = opts.room;
    this.ws = null;
    this.resumeToken = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = 0;
    this.keepalive = 0;
    this.lastRx = 0;
    this.suspect = false; // an unanswered ping or an offline event: shown as reconnecting
    this.onOnline = () => this._wake();
    this.onOffline = () => this._suspect();
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const token = this.o.getToken();
    if (!token) { this._end(); this.o.onAuthLost(); return; }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${proto}//${location.host}/ws/rooms/${encodeURIComponent(this.room)}?token=${encodeURIComponent(token)}`;
    url += '&sfu=1'; // we know routed calls (docs/protocol.md "Routed calls")
    if (this.resumeToken) url += `&resume=${encodeURIComponent(this.resumeToken)}`;
    const pass = passFor(this.room); // a room pass, never the room password
    if (pass) url += `&pass=${encodeURIComponent(pass)}`;
    this.o.onStatus(this.attempt ? 'reconnecting' : 'connecting', this.attempt);
    let ws;
    try { ws = new WebSocket(url); } catch { this._retry(); return; }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; this.lastRx = Date.now(); this._startKeepalive(); };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastRx = Date.now();
      if (this.suspect) { this.suspect = false; this.o.onStatus('open', 0); }
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'pong') return;
      if (frame.type === 'welcome') {
        this.resumeToken = frame.resume_token || null;
        this.attempt = 0;
        this.o.onStatus('open', 0);
      }
      this.o.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return; // an old socket we already gave up on
      this.ws = null;
      this._stopKeepalive();
      this._closed(ev.code, opened);
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  /** Send a frame; false if not connected (the caller's state is re-sent after (re)join anyway). */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  get connected() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  /** Leave the room for good. */
  leave() {
    this.send({ type: 'leave' });
    this._end();
  }

  _end() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._stopKeepalive();
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(1000); } catch { /* already closing */ } }
  }

  async _closed(code, opened) {
    if (this.stopped) return;
    if (!opened) {
      // Refused before opening: maybe our token is no good (HTTP 401 is invisible to a browser).
      const status = await this.o.checkToken();
      if (this.stopped) return;
      if (status === 'invalid') { this._end(); this.o.onAuthLost(); return; }
      this._retry();
      return;
    }
    if (code === 4401) {
      let ok = false;
      try { ok = await this.o.refreshToken(); } catch { ok = (await this.o.checkToken()) !== 'invalid'; }
      if (this.stopped) return;
      if (ok) { this.attempt = Math.max(this.attempt, 1); this.connect(); } else { this._end(); this.o.onAuthLost(); }
      return;
    }
    if (RECONNECT_CODES.has(code)) { this._retry(); return; }
    this._end();
    this.o.onStatus('closed', 0);
    this.o.onFatal(FATAL_CODES[code] || 'closed', code);
  }

  _retry() {
    if (this.stopped) return;
    this.attempt += 1;
    const base = Math.min(BACKOFF_MAX, 500 * 2 ** (this.attempt - 1));
    const delay = base * (0.75 + Math.random() * 0.5);
    this.o.onStatus('reconnecting', this.attempt);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** The network came back: don't wait for the backoff; check a socket that may be dead. */
  _wake() {
    if (this.stopped) return;
    if (!this.ws && this.attempt) { this.connect(); return; }
    if (this.connected) {
      this.send({ type: 'ping' });
      const sent = Date.now();
      setTimeout(() => { if (this.ws && this.lastRx < sent) this._drop(); }, 5000);
    }
  }

  /** The network went away, or a ping went unanswered: say so now, and probe the socket. */
  _suspect() {
    if (this.stopped || !this.connected || this.suspect) return;
    this.suspect = true;
    this.o.onStatus('reconnecting', this.attempt);
    this.send({ type: 'ping' });
  }

  /** Treat the current socket as lost (no close frame will come) and reconnect with resume. */
  _drop() {
    this.suspect = false;
    const ws = this.ws;
    this.ws = null;
    this._stopKeepalive();
    if (ws) { ws.onclose = null; try { ws.close(); } catch { /* ignore */ } }
    this._closed(1006, true);
  }

  _startKeepalive() {
    this._stopKeepalive();
    this.keepalive = setInterval(() => {
      if (Date.now() - this.lastRx > STALE_AFTER) { this._drop(); return; }
      const sent = Date.now();
      this.send({ type: 'ping' });
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => { if (this.ws && this.lastRx < sent) this._suspect(); }, PONG_WAIT);
    }, PING_EVERY);
  }

  _stopKeepalive() { clearInterval(this.keepalive); clearTimeout(this.pongTimer); this.keepalive = 0; }
}
