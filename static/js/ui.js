// The call view: video grid and tiles, controls, connection status.
// Knows nothing of WebRTC or the socket: session.js (or demo.js) drives it.

import { $, h, setText, setAttrText, initials, hueOf } from './common.js';
import { icon, setIcon } from './icons.js';
import { arrange, cornerRect, nearestCorner, SpeakerTracker } from './layout.js';
import { PeoplePanel } from './people.js';
import { CallBar } from './callbar.js';

const GAP = 12;
const PHONE = '(max-width: 600px)';

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
    // Layout: 'grid' or 'speaker' as the user picked, null = automatic (speaker view on a phone,
    // with a pinned tile or a screen share; a grid otherwise).
    this.mode = null;
    this.pinned = null;       // tile id the user pinned to the large spot
    this.speaker = null;      // the active speaker (a remote tile id)
    this.main = null;         // the tile in the large spot now (speaker view)
    this.presenter = null;    // a remote tile sharing its screen
    this.pipCorner = null;    // where your own tile floats on a phone, once dragged
    this.tracker = new SpeakerTracker();
    this.levelOf = null;      // (id) → loudness 0…1, set by the session (or the demo)
    this.more = h('button', { type: 'button', class: 'tile-more', 'data-testid': 'more-tiles', onclick: () => this.setMode('grid') });
    this.more.hidden = true;
    this.grid.append(this.more);
    this.presenting = h('div', { class: 'presenting', 'data-testid': 'presenting', role: 'status' },
      icon('screen'), h('span', { class: 'presenting-text' }),
      h('button', { type: 'button', class: 'btn btn-small presenting-stop', 'data-testid': 'stop-presenting', i18n: 'stop_presenting', onclick: () => this.on.screen && this.on.screen() }));
    this.presenting.hidden = true;
    this.stage.append(this.presenting);
    window.matchMedia(PHONE).addEventListener('change', () => this.layout());
    window.matchMedia('(min-width: 1100px)').addEventListener('change', (m) => this.toggleChat(m.matches));
    this.unread = 0;
    this.owner = null;        // {id: the room owner's user id, me: you own it, canKick}
    this.people = new PeoplePanel(this);
    this.bar = new CallBar(this, this.people);
  }

  /** The room's owner (from the welcome): marked in the participant list. */
  setOwner(owner) {
    this.owner = owner;
    this.people.render();
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
    clearInterval(this.speakerLoop);
    this.speakerLoop = setInterval(() => this._followSpeaker(), 200);
    this.bar.start();
  }

  hide() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    this.pinned = null; this.speaker = null; this.main = null; this.mode = null; this.owner = null;
    this.tracker = new SpeakerTracker();
    clearInterval(this.speakerLoop);
    this.speakerLoop = 0;
    this.bar.stop();
    this.people.toggle(false);
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
    bar, this._actions(id, username));
    el.addEventListener('click', (e) => {
      // A tile in the strip comes to the large spot when clicked (its controls work as ever).
      if (el.dataset.strip === 'true' && !e.target.closest('button, input, label, a')) this.pin(id);
    });
    if (local) this._draggable(el);
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

  _actions(id, username) {
    const pin = h('button', { type: 'button', class: 'icon-btn tile-pin', 'data-testid': 'pin', 'aria-pressed': 'false',
      onclick: () => this.pin(this.pinned === id ? null : id) }, icon('pin'));
    setAttrText(pin, 'aria-label', 'pin_name', { name: username });
    pin.dataset.i18nArgs = JSON.stringify({ name: username });
    const full = h('button', { type: 'button', class: 'icon-btn tile-full', 'data-testid': 'fullscreen', onclick: () => this.fullscreen(id) }, icon('expand'));
    setAttrText(full, 'aria-label', 'fullscreen_name', { name: username });
    full.dataset.i18nArgs = JSON.stringify({ name: username });
    setAttrText(pin, 'title', 'pin_name', { name: username }); // re-translated with the label
    setAttrText(full, 'title', 'fullscreen_name', { name: username });
    return h('div', { class: 'tile-actions' }, pin, full);
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
      box.append(...(this.moderationTools?.({ id, name: username }) || []));
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
    if (this.pinned === id) this.pinned = null;
    this.layout();
    this.onPeople && this.onPeople();
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
    const wasScreen = el.dataset.screen === 'true';
    for (const k of ['audio', 'video', 'screen', 'hand']) el.dataset[k] = String(!!state[k]);
    if (wasScreen !== !!state.screen) {
      // Someone starts presenting: their screen takes the large spot (the view goes automatic).
      if (state.screen && id !== 'local') this.mode = null;
      this.layout();
    }
    this.onPeople && this.onPeople();
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
    if (open && this.onPanel) this.onPanel('chat');
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

  // ---- layout: grid or speaker view, pin, fullscreen, the floating self-view on a phone ----
  get phone() { return window.matchMedia(PHONE).matches; }

  /** The view shown now: the user's pick, else speaker view on a phone, when pinned or presenting. */
  get effectiveMode() {
    return this.mode || (this.phone || this.presenter || (this.pinned && this.tiles.has(this.pinned)) ? 'speaker' : 'grid');
  }

  setMode(mode) {
    this.mode = mode === 'grid' || mode === 'speaker' ? mode : null;
    this.layout();
  }

  toggleMode() { this.setMode(this.effectiveMode === 'grid' ? 'speaker' : 'grid'); }

  /** Pin a tile to the large spot (null: unpin, the active speaker leads again). */
  pin(id) {
    this.pinned = id && this.tiles.has(id) ? id : null;
    if (this.pinned && this.mode === 'grid') this.mode = null;
    this.layout();
  }

  /** Full screen for a tile (again: leave full screen). Esc leaves too. */
  fullscreen(id) {
    if (document.fullscreenElement) { document.exitFullscreen().catch(() => {}); return; }
    const el = this.tiles.get(id || this.main || this.pinned || [...this.tiles.keys()].find((k) => k !== 'local') || 'local');
    if (el && el.requestFullscreen) el.requestFullscreen().catch(() => {});
  }

  /** Who is talking (from the levels, steadied in SpeakerTracker): the large tile follows them. */
  _followSpeaker() {
    if (!this.levelOf || this.view.hidden) return;
    const levels = new Map();
    for (const [id, el] of this.tiles) {
      if (id !== 'local') levels.set(id, el.dataset.audio === 'true' ? Number(this.levelOf(id)) || 0 : 0);
    }
    const who = this.tracker.update(levels, performance.now());
    if (who === this.speaker) return;
    this.speaker = who;
    for (const [id, el] of this.tiles) el.dataset.activeSpeaker = String(id === who);
    this.layout();
  }

  _mainId() {
    if (this.pinned && this.tiles.has(this.pinned)) return this.pinned;
    if (this.presenter) return this.presenter;
    if (this.speaker && this.tiles.has(this.speaker)) return this.speaker;
    if (this.main && this.tiles.has(this.main) && this.main !== 'local') return this.main;
    return [...this.tiles.keys()].find((k) => k !== 'local') || 'local';
  }

  /** Place every tile on the stage (see layout.js), the presenting bar, the "+N" tile. */
  layout() {
    const n = this.tiles.size;
    this.grid.dataset.count = String(n);
    this.presenter = [...this.tiles].find(([id, el]) => id !== 'local' && el.dataset.screen === 'true')?.[0] || null;
    this._presentingBar();
    if (!n || this.view.hidden) return;
    const cs = getComputedStyle(this.grid);
    const pad = parseFloat(cs.paddingLeft) || GAP;
    const top = parseFloat(cs.paddingTop) || pad; // more when the presenting bar is shown
    const gap = parseFloat(cs.columnGap) || GAP;
    const W = this.grid.clientWidth - pad * 2;
    const H = this.grid.clientHeight - pad - top;
    if (W <= 0 || H <= 0) return;
    const mode = this.effectiveMode;
    const res = arrange({ ids: [...this.tiles.keys()], main: this._mainId(), mode, phone: this.phone, W, H, gap });
    this.main = res.main;
    this.grid.dataset.mode = res.main ? 'speaker' : 'grid';
    this.grid.dataset.size = `${this.grid.clientWidth}x${this.grid.clientHeight}`; // laid out for this size
    this.grid.dataset.phone = String(this.phone);
    for (const [id, el] of this.tiles) {
      const r = res.rects.get(id);
      el.dataset.offstage = String(!r);
      el.dataset.main = String(id === res.main);
      el.dataset.pip = String(id === res.pip);
      el.dataset.strip = String(!!res.main && !!r && id !== res.main && id !== res.pip);
      el.dataset.small = String(res.small.has(id));
      el.dataset.tiny = String(!!r && r.w < 180); // the volume shows on hover / focus only
      el.dataset.pinned = String(id === this.pinned);
      const pin = el.querySelector('[data-testid=pin]');
      pin.setAttribute('aria-pressed', String(id === this.pinned));
      if (!r) continue;
      // Undragged, your picture sits clear of the strip (top right) or of the names (bottom right).
      const corner = this.pipCorner || (res.main ? 'tr' : 'br');
      const at = id === res.pip ? cornerRect(corner, r.w, r.h, W, H, 4) : r;
      place(el, pad + at.x, top + at.y, r.w, r.h);
    }
    this.more.hidden = !res.more;
    if (res.more) {
      place(this.more, pad + res.more.x, top + res.more.y, res.more.w, res.more.h);
      setText(this.more, 'more_tiles', { n: res.more.count });
      setAttrText(this.more, 'title', 'show_everyone');
    }
    this.onLayout && this.onLayout(mode);
  }

  _presentingBar() {
    const local = this.tiles.get('local');
    const me = !!local && local.dataset.screen === 'true';
    const other = this.presenter && this.tiles.get(this.presenter);
    this.presenting.hidden = !me && !other;
    this.stage.dataset.presenting = String(me || !!other);
    this.presenting.dataset.mine = String(me);
    const text = this.presenting.querySelector('.presenting-text');
    if (me) setText(text, 'you_presenting');
    else if (other) setText(text, 'presenting_name', { name: other.dataset.username || '' });
  }

  /** Your own tile on a phone floats: drag it, it snaps to the nearest corner, never off the stage. */
  _draggable(el) {
    let drag = null;
    el.addEventListener('pointerdown', (e) => {
      if (el.dataset.pip !== 'true' || e.button !== 0 || e.target.closest('button, input, label')) return;
      const box = el.getBoundingClientRect();
      drag = { id: e.pointerId, dx: e.clientX - box.left, dy: e.clientY - box.top, moved: false, x0: e.clientX, y0: e.clientY };
      el.setPointerCapture(e.pointerId);
      el.dataset.dragging = 'true';
    });
    el.addEventListener('pointermove', (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      if (Math.abs(e.clientX - drag.x0) + Math.abs(e.clientY - drag.y0) > 4) drag.moved = true;
      const g = this.grid.getBoundingClientRect();
      const x = Math.max(0, Math.min(g.width - el.offsetWidth, e.clientX - g.left - drag.dx));
      const y = Math.max(0, Math.min(g.height - el.offsetHeight, e.clientY - g.top - drag.dy));
      el.style.setProperty('--x', `${x}px`);
      el.style.setProperty('--y', `${y}px`);
    });
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const moved = drag.moved;
      drag = null;
      el.dataset.dragging = 'false';
      if (!moved) return;
      const g = this.grid.getBoundingClientRect();
      const b = el.getBoundingClientRect();
      this.pipCorner = nearestCorner(b.left + b.width / 2 - g.left, b.top + b.height / 2 - g.top, g.width, g.height);
      el.dataset.corner = this.pipCorner;
      this.layout();
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
  }
}

function place(el, x, y, w, hh) {
  el.style.setProperty('--x', `${Math.round(x)}px`);
  el.style.setProperty('--y', `${Math.round(y)}px`);
  el.style.setProperty('--tile-w', `${Math.round(w)}px`);
  el.style.setProperty('--tile-h', `${Math.round(hh)}px`);
}

function press(btn, on, ic) {
  btn.setAttribute('aria-pressed', String(!!on));
  if (ic) setIcon(btn.querySelector('.ctl-icon'), ic);
}

function hydrateAll(el) {
  for (const ph of el.querySelectorAll('[data-icon]')) setIcon(ph, ph.dataset.icon);
}
