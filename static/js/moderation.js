// Moderation in a call (docs/protocol.md, "Moderation"). A host (the room's owner, or an admin:
// the server says so in the welcome) gets Mute / Stop share / Remove on each tile and row of the
// participant list, and "Mute all" and "Only hosts may speak" at the top of the participant list.
// Remove asks first, with an "Also ban from this room" checkbox.
//
// What a host does reaches the target's client as a `moderated` frame: it obeys at once (the
// microphone track is disabled, the screen share ends) and says so. While only hosts may speak,
// the microphone button of everyone else is disabled (its tooltip says why) and, because in a
// mesh call the server never touches the media, every client also plays no sound from a peer who
// is not a host: a modified client that kept sending would still not be heard.

import { h, setAttrText, toast } from './common.js';
import { icon } from './icons.js';
import { confirmDialog } from './dialog.js';

export class Moderation {
  /** session: the CallSession (its ui, sig, peers, state, tracks). */
  constructor(session) {
    this.s = session;
    this.host = false;
    this.hostsOnly = false;
    const ui = session.ui;
    ui.moderationTools = (p) => this._tools(p);
    this.muteAll = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'mute-all',
      onclick: () => this.s.sig.send({ type: 'mute_all' }) }, icon('micOff'), h('span', { i18n: 'mod_mute_all' }));
    this.only = h('input', { type: 'checkbox', 'data-testid': 'hosts-only',
      onchange: () => this.s.sig.send({ type: 'hosts_only', on: this.only.checked }) });
    this.bar = h('div', { class: 'mod-bar', 'data-testid': 'moderation-bar' }, this.muteAll,
      h('label', { class: 'mod-switch' }, this.only, h('span', { i18n: 'mod_hosts_only' })));
    this.bar.hidden = true;
    ui.people.panel.querySelector('.people-scroll').before(this.bar);
  }

  /** From the welcome: whether we are a host, and the room's rule now. */
  welcome(f) {
    this.host = !!f.host;
    const mine = this.s.ui.tiles.get('local');
    if (mine) mine.dataset.host = String(this.host);
    this.bar.hidden = !this.host;
    this._setHostsOnly(!!f.hosts_only);
  }

  /** A moderation frame from the server; true when it was one. */
  frame(f) {
    if (f.type === 'moderated') {
      if (f.action === 'mute') this._obeyMute();
      if (f.action === 'stop_screen') { toast('mod_screen_stopped', null, 'screen'); this.s._stopScreen(); }
      return true;
    }
    if (f.type === 'hosts_only') {
      this._setHostsOnly(!!f.on);
      toast(f.on ? 'mod_hosts_only_on' : 'mod_hosts_only_off', null, f.on ? 'micOff' : 'mic');
      return true;
    }
    return false;
  }

  /** Whether we may turn our microphone on now (says why not). */
  maySpeak() {
    if (!this.hostsOnly || this.host) return true;
    toast('mod_mic_locked', null, 'micOff');
    return false;
  }

  /** A peer's sound is held back while only hosts may speak, unless it is a host's. */
  peerChanged(id) {
    const p = this.s.peers.get(id);
    if (!p) return;
    const silenced = this.hostsOnly && !p.host;
    this.s.audio.silence(id, silenced);
    const tile = this.s.ui.tiles.get(id);
    if (!tile) return;
    tile.dataset.silenced = String(silenced);
    tile.dataset.host = String(!!p.host);
    this.s.ui.people.render();
  }

  /** Ask "Remove NAME?" with "Also ban from this room"; then kick (and ban). */
  async confirmRemove(id) {
    const p = this.s.peers.get(id);
    if (!p) return;
    const ban = { label: 'kick_ban', body: 'kick_ban_body', checked: false };
    const yes = await confirmDialog({ title: 'kick_confirm_title', body: 'kick_confirm_body', ok: 'kick_confirm_ok',
      args: { name: p.username }, danger: true, choice: ban });
    if (yes && !this.s.ended && this.s.peers.has(id)) this.s.sig.send({ type: 'kick', peer_id: id, ban: ban.checked });
  }

  /** The server refused our unmute (only hosts may speak): the microphone goes off again. */
  refused() {
    toast('mod_mic_locked', null, 'micOff');
    this._micOff();
  }

  _obeyMute() {
    toast('mod_muted_by_host', null, 'micOff');
    this._micOff();
  }

  _micOff() {
    const s = this.s;
    if (!s.state.audio) return;
    s.state.audio = false;
    if (s.tracks.audio) s.tracks.audio.enabled = false;
    s._sendState();
  }

  _setHostsOnly(on) {
    this.hostsOnly = on;
    this.only.checked = on;
    const mic = this.s.ui.controls.mic;
    const locked = on && !this.host;
    mic.setAttribute('aria-disabled', String(locked));
    mic.dataset.hostsOnly = String(locked);
    setAttrText(mic, 'title', locked ? 'mod_mic_locked' : 'mic_title');
    for (const id of this.s.peers.keys()) this.peerChanged(id);
  }

  /**
   * A host's buttons for a remote person ({id, name, audio?, screen?}): on a tile (no state given:
   * CSS shows them by the tile's state) or a row of the list (only what applies now).
   */
  _tools(p) {
    if (!this.host) return [];
    const mute = h('button', { type: 'button', class: 'icon-btn mod-mute', 'data-testid': 'mod-mute',
      onclick: () => this.s.sig.send({ type: 'mute', peer_id: p.id }) }, icon('micOff'));
    const stop = h('button', { type: 'button', class: 'icon-btn mod-stop-share', 'data-testid': 'mod-stop-share',
      onclick: () => this.s.sig.send({ type: 'stop_screen', peer_id: p.id }) }, icon('screen'));
    for (const [btn, key] of [[mute, 'mod_mute_name'], [stop, 'mod_stop_share_name']]) {
      btn.dataset.i18nArgs = JSON.stringify({ name: p.name });
      setAttrText(btn, 'aria-label', key, { name: p.name });
      setAttrText(btn, 'title', key, { name: p.name });
    }
    return [p.audio === false ? null : mute, p.screen === false ? null : stop].filter(Boolean);
  }
}
