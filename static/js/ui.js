// The call view: video grid and tiles, controls, connection status.
// Knows nothing of WebRTC or the socket: session.js (or demo.js) drives it.

import { $, h, setText, setAttrText, initials, hueOf } from './common.js';
import { icon, setIcon } from './icons.js';

const GAP = 12;

export class CallUI {
  constructor() {
    this.view = $('#call');
    this.stage = $('#stage');
    this.grid = $('#grid');
    this.tiles = new Map(); // 'local' | peerId → tile element
    this.on = {};           // handlers: mic, cam, screen, hand, leave, volume(id, gain), kick(id), copyLink
    this.controls = {
      mic: $('#toggle-mic'), cam: $('#toggle-cam'), screen: $('#toggle-screen'),
      hand: $('#toggle-hand'), chat: $('#toggle-chat'), leave: $('#leave'),
    };
    for (const name of ['mic', 'cam', 'screen', 'hand', 'leave']) {
      this.controls[name].addEventListener('click', () => this.on[name] && this.on[name]());
    }
    this.controls.chat.addEventListener('click', () => this.toggleChat());
    $('#chat-close').addEventListener('click', () => this.toggleChat(false));
    $('#copy-link').addEventListener('click', () => this.on.copyLink && this.on.copyLink());
    new ResizeObserver(() => this.layout()).observe(this.stage);
    // Keyboard shortcuts while in a call (not while typing).
    document.addEventListener('keydown', (e) => {
      if (this.view.hidden || e.ctrlKey || e.metaKey || e.altKey || e.target.closest('input, textarea, select')) return;
      const map = { m: 'mic', v: 'cam', h: 'hand' };
      const k = map[e.key.toLowerCase()];
      if (k && this.on[k] && !this.controls[k].disabled) { e.preventDefault(); this.on[k](); }
    });
    window.matchMedia('(min-width: 1100px)').addEventListener('change', (m) => this.toggleChat(m.matches));
    this.unread = 0;
  }

  show(room) {
    this.view.hidden = false;
    document.body.classList.add('in-call');
    $('#call-info').hidden = false;
    $('#room-title').textContent = room;
    $('#room-title').title = room; // the full name, when it is cut short
    document.title = `${room} · WebCall`;
    this.toggleChat(window.matchMedia('(min-width: 1100px)').matches);
    this.layout();
  }

  hide() {
    this.view.hidden = true;
    document.body.classList.remove('in-call');
    $('#call-info').hidden = true;
    for (const id of [...this.tiles.keys()]) this.removeTile(id);
    this.unread = 0;
    this._badge();
  }

  // ---- status ----
  setStatus(state) {
    const el = $('#conn-status');
    el.dataset.state = state;
    setText($('.status-text', el), `status_${state}`);
  }

  // ---- tiles ----
  _tile(id, { username, local, canKick }) {
    const video = h('video', { autoplay: true, playsinline: true, 'data-testid': local ? 'local-video' : 'peer-video' });
    video.muted = true; // sound goes through Web Audio (the gain), never the element
    video.addEventListener('resize', () => this._videoShown(video.closest('.tile')));
    video.addEventListener('loadeddata', () => this._videoShown(video.closest('.tile')));
    video.addEventListener('emptied', () => this._videoShown(video.closest('.tile')));
    const avatar = h('div', { class: 'tile-avatar' }, h('span', { class: 'avatar avatar-xl', text: initials(username) }));
    avatar.style.setProperty('--hue', hueOf(username));
    const name = h('span', { class: 'tile-name', 'data-testid': local ? 'local-name' : 'peer-name', text: username });
    const micIcon = h('span', { class: 'tile-mic', 'data-icon': 'mic' });
    const bar = h('div', { class: 'tile-bar' }, micIcon, name);
    if (local) bar.append(h('span', { class: 'tile-you', i18n: 'you' }));
    const el = h('article', {
      class: 'tile', dataset: { audio: 'false', video: 'false', screen: 'false', hand: 'false', speaking: 'false' },
      'aria-label': username,
    }, video, avatar,
    h('div', { class: 'tile-hand', 'data-testid': 'hand' }, icon('hand'), h('span', { i18n: 'hand_raised' })),
    h('div', { class: 'tile-conn' }, h('span', { class: 'spinner spinner-sm' }), h('span', { i18n: 'connecting_peer' })),
    bar);
    if (local) {
      el.dataset.local = 'true';
      el.dataset.testid = 'local-tile';
    } else {
      el.dataset.peerId = id;
      el.dataset.testid = 'remote-tile';
      el.dataset.username = username;
      el.dataset.gain = '1';
      el.dataset.conn = 'new';
      el.append(this._volume(id, el, username, canKick));
    }
    hydrateAll(el);
    return el;
  }

  _volume(id, tile, username, canKick) {
    const input = h('input', {
      type: 'range', min: 0, max: 200, step: 5, value: 100, 'data-testid': 'volume',
      'aria-valuetext': '100%',
    });
    setAttrText(input, 'aria-label', 'volume_for', { name: username });
    input.dataset.i18nArgs = JSON.stringify({ name: username });
    const out = h('output', { class: 'vol-value', 'data-testid': 'volume-value', text: '100%' });
    const ic = h('span', { class: 'vol-icon', 'data-icon': 'volume' });
    const apply = () => {
      const pct = Number(input.value);
      out.textContent = `${pct}%`;
      input.setAttribute('aria-valuetext', `${pct}%`);
      input.style.setProperty('--fill', `${pct / 2}%`);
      setIcon(ic, pct === 0 ? 'volumeOff' : 'volume');
      const g = this.on.volume ? this.on.volume(id, pct / 100) : pct / 100;
      tile.dataset.gain = String(Math.round(g * 1000) / 1000);
    };
    input.addEventListener('input', apply);
    const box = h('div', { class: 'tile-tools' },
      h('label', { class: 'tile-volume' }, ic, input, out));
    if (canKick) {
      const kick = h('button', { type: 'button', class: 'icon-btn tile-kick', 'data-testid': 'kick', onclick: () => this.on.kick && this.on.kick(id) }, icon('kick'));
      setAttrText(kick, 'aria-label', 'kick_name', { name: username });
      kick.dataset.i18nArgs = JSON.stringify({ name: username });
      setAttrText(kick, 'title', 'kick_name', { name: username }); // re-translated with the label
      box.append(kick);
    }
    return box;
  }

  /** The local tile. */
  setLocal({ username, stream, state }) {
    let el = this.tiles.get('local');
    if (!el) {
      el = this._tile('local', { username, local: true });
      this.tiles.set('local', el);
      this.grid.prepend(el);
    }
    this.setStream('local', stream);
    this.setState('local', state);
    this.layout();
  }

  /** A remote peer's tile: {peer_id, username, state}; gain 0–2. */
  addPeer(peer, { gain = 1, canKick = false } = {}) {
    if (this.tiles.has(peer.peer_id)) return this.tiles.get(peer.peer_id);
    const el = this._tile(peer.peer_id, { username: peer.username, canKick });
    el.dataset.userId = peer.user_id || '';
    this.tiles.set(peer.peer_id, el);
    this.grid.append(el);
    this.setState(peer.peer_id, peer.state || {});
    if (gain !== 1) this.setVolume(peer.peer_id, gain);
    this.layout();
    return el;
  }

  removeTile(id) {
    const el = this.tiles.get(id);
    if (!el) return;
    const v = el.querySelector('video');
    v.srcObject = null;
    el.remove();
    this.tiles.delete(id);
    this.layout();
  }

  setStream(id, stream) {
    const el = this.tiles.get(id);
    if (!el) return;
    const v = el.querySelector('video');
    if (v.srcObject !== stream) v.srcObject = stream || null;
    if (stream) v.play().catch(() => {}); // muted: allowed without a gesture
    this._videoShown(el);
  }

  /** state: {audio, video, screen, hand} */
  setState(id, state) {
    const el = this.tiles.get(id);
    if (!el) return;
    for (const k of ['audio', 'video', 'screen', 'hand']) el.dataset[k] = String(!!state[k]);
    const mic = el.querySelector('.tile-mic');
    setIcon(mic, state.audio ? 'mic' : 'micOff');
    setAttrText(mic, 'aria-label', state.audio ? 'mic_on' : 'mic_off');
    mic.setAttribute('role', 'img');
    this._videoShown(el);
  }

  _videoShown(el) {
    const v = el.querySelector('video');
    const track = v.srcObject && v.srcObject.getVideoTracks()[0];
    const wants = el.dataset.video === 'true' || el.dataset.screen === 'true';
    // Not track.muted: Chrome can leave it stale after a rollback. Frames in the element decide.
    const live = !!track && track.readyState === 'live' && v.videoWidth > 0;
    el.dataset.showVideo = String(wants && live);
  }

  setSpeaking(id, speaking) {
    const el = this.tiles.get(id);
    if (el) el.dataset.speaking = String(!!speaking && el.dataset.audio === 'true');
  }

  setConn(id, state) {
    const el = this.tiles.get(id);
    if (el) el.dataset.conn = state;
  }

  /** Set a remote tile's volume slider (and so its gain). */
  setVolume(id, gain) {
    const input = this.tiles.get(id)?.querySelector('[data-testid="volume"]');
    if (!input) return;
    input.value = String(Math.round(gain * 100));
    input.dispatchEvent(new Event('input'));
  }

  // ---- controls ----
  /** s: {audio, video, screen, hand, hasAudio, canVideo, canScreen} */
  setControls(s) {
    const c = this.controls;
    press(c.mic, s.audio, s.audio ? 'mic' : 'micOff');
    press(c.cam, s.video, s.video ? 'cam' : 'camOff');
    press(c.screen, s.screen, 'screen');
    press(c.hand, s.hand, 'hand');
    c.mic.dataset.off = String(!s.audio);
    c.cam.dataset.off = String(!s.video);
    c.screen.hidden = !s.canScreen;
  }

  toggleChat(force) {
    const panel = $('#chat-panel');
    const open = force === undefined ? panel.hidden : !!force;
    panel.hidden = !open;
    this.view.dataset.chat = String(open);
    press(this.controls.chat, open);
    if (open) { this.unread = 0; this._badge(); if (force === undefined) $('#chat-input').focus(); }
    this.layout();
  }

  get chatOpen() { return !$('#chat-panel').hidden; }

  bumpUnread() {
    if (this.chatOpen) return;
    this.unread += 1;
    this._badge();
  }

  _badge() {
    const b = $('#chat-badge');
    b.textContent = this.unread > 9 ? '9+' : String(this.unread);
    b.hidden = this.unread === 0;
  }

  /** Fit every tile in the stage, as large as possible: aspect 1:1…16:9 (3:4…16:9 on a tall stage). */
  layout() {
    const n = this.tiles.size;
    this.grid.dataset.count = String(n);
    if (!n || this.view.hidden) return;
    const W = this.stage.clientWidth - GAP * 2;
    const H = this.stage.clientHeight - GAP * 2;
    if (W <= 0 || H <= 0) return;
    const minAspect = H > W ? 3 / 4 : 1;
    let best = { area: -1, w: 0, h: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      let w = (W - GAP * (cols - 1)) / cols;
      let hh = (H - GAP * (rows - 1)) / rows;
      if (w / hh > 16 / 9) w = hh * 16 / 9;
      if (w / hh < minAspect) hh = w / minAspect;
      const area = w * hh;
      if (area > best.area + 1) best = { area, w, h: hh };
    }
    this.grid.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
    this.grid.style.setProperty('--tile-h', `${Math.floor(best.h)}px`);
    for (const el of this.tiles.values()) el.dataset.small = String(best.w < 340);
  }
}

function press(btn, on, ic) {
  btn.setAttribute('aria-pressed', String(!!on));
  if (ic) setIcon(btn.querySelector('.ctl-icon'), ic);
}

function hydrateAll(el) {
  for (const ph of el.querySelectorAll('[data-icon]')) setIcon(ph, ph.dataset.icon);
}
