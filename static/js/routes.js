// How a call's media travels, in the web client: a mesh (a connection to every other person, end
// to end encrypted) or routed through the server (one connection to it, sfu.js). The server
// decides (docs/protocol.md "Routed calls"): the welcome's `media_mode` at join, a `media_mode`
// frame when the room switches mid-call (by size, a host, or a recording). We follow without the
// person doing anything: on `sfu` the mesh connections close and the routed one opens; on `mesh`
// it closes and the mesh is built again (the peer whose id sorts lower offers to the higher).
//
// Also shown here, truthfully: a badge in the top bar says which mode the call is in (and what
// that means for privacy, in its tooltip), hosts get "Route through server" / "Back to
// peer-to-peer" in their bar of the participant list when the server offers routed calls, and a
// page the server calls out of date (`update_required`) gets a banner with Reload.
//
// Test hooks: media-mode (the badge, data-mode = mesh | sfu), media-mode-toggle, reload-page.

import { $, h, setText, setAttrText, showNotice, clearNotice, toast } from './common.js';
import { setIcon } from './icons.js';
import { Routed } from './sfu.js';
import { ViewReport } from './sfuview.js';
import { tileConnection } from './feedback.js';

export class MediaRoutes {
  /** session: the CallSession (its mesh, peers, tracks, ui, sig, mod). */
  constructor(session) {
    this.s = session;
    this.mode = 'mesh';
    this.available = false;
    this.conn = 'new';
    this.routed = new Routed({
      forceRelay: session.o.forceRelay,
      send: (signal) => session.sig.send({ type: 'sfu', signal }),
      onStream: (id, stream) => this._stream(id, stream),
      onConnState: (state) => this._connState(state),
    });
    this.view = new ViewReport({
      ui: session.ui,
      sources: () => this.routed.sources(),
      send: (tiles) => this.routed.open && session.sig.send({ type: 'sfu', signal: { kind: 'view', tiles } }),
    });
    this.badgeText = h('span', { class: 'mode-text wide-only' });
    this.badgeIcon = h('span', { class: 'mode-icon', 'data-icon': 'lock' });
    this.badge = h('span', { class: 'mode-pill', 'data-testid': 'media-mode', 'data-mode': 'mesh', tabindex: '0', role: 'note' },
      this.badgeIcon, this.badgeText);
    $('#conn-status').after(this.badge);
    this.toggle = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'media-mode-toggle',
      onclick: () => session.sig.send({ type: 'media_mode', mode: this.mode === 'sfu' ? 'mesh' : 'sfu' }) },
    h('span', { class: 'mode-toggle-icon', 'data-icon': 'server' }), h('span', { class: 'mode-toggle-text' }));
    this.toggle.hidden = true;
    session.mod.bar.append(this.toggle);
    this._show();
  }

  /** From the welcome, before its peers are added: the mode now, and whether hosts may switch it. */
  welcome(f) {
    this.available = !!f.sfu_available;
    const mode = f.media_mode === 'sfu' ? 'sfu' : 'mesh';
    if (mode !== this.mode) this._leaveMode();
    this.mode = mode;
    this._show();
  }

  /** After the welcome's peers are added: the routed connection opens (or goes on after a resume). */
  joined(fresh) {
    if (this.mode === 'sfu') {
      // Resumed on a new socket: the server kept our session, unless it failed meanwhile or an
      // answer of its may have been lost with the old socket (then we start over: `open` replaces).
      const pc = this.routed.pc;
      const gone = !this.routed.open || !pc || ['failed', 'closed'].includes(pc.connectionState) || this.routed.waiting;
      if (fresh || gone) this._openRouted();
      else this.routed.flush(); // an offer that waited for the socket goes now
      return;
    }
    this._buildMesh();
  }

  /** A routing frame (`media_mode`, `sfu`); true when it was one. */
  frame(f) {
    if (f.type === 'sfu') { if (this.mode === 'sfu') this.routed.reply(f.reply); return true; }
    if (f.type !== 'media_mode') return false;
    const mode = f.mode === 'sfu' ? 'sfu' : 'mesh';
    if (mode === this.mode) return true;
    this._leaveMode();
    this.mode = mode;
    this._show();
    toast(mode === 'sfu' ? 'mode_now_sfu' : 'mode_now_mesh', null, mode === 'sfu' ? 'server' : 'lock');
    if (mode === 'sfu') this._openRouted(); else this._buildMesh();
    return true;
  }

  /** A routing error; true when it was one. */
  error(f) {
    switch (f.code) {
      case 'update_required':
        // Routed already: a mesh frame of ours crossed the switch (the server refuses those with
        // this code, meant for pages that know no routed calls). Ours does: nothing to reload.
        if (this.mode === 'sfu') return true;
        showNotice({ id: 'update', kind: 'error', icon: 'refresh', key: 'err_update_required', dismissible: false,
          action: { key: 'reload', testid: 'reload-page', onClick: () => location.reload() } });
        return true;
      case 'sfu_unavailable': toast('err_sfu_unavailable', null, 'alert'); return true;
      case 'not_routed': return true; // an sfu frame of ours crossed the switch back to a mesh
      case 'recording_running': toast('err_recording_running', null, 'alert'); return true;
      default: return false;
    }
  }

  /** What we send changed (`kind` 'audio' | 'video'): the mesh's senders, and the routed ones. */
  async setTrack(kind, track, opts) {
    await this.s.mesh.setTrack(kind, track, opts);
    if (this.mode === 'sfu') await this.routed.update(this.s.tracks);
  }

  /** Routed: what our senders carry follows the session's tracks (camera and screen apart). */
  sync() {
    if (this.mode === 'sfu') this.routed.update(this.s.tracks);
  }

  setIceServers(list) {
    this.s.mesh.setIceServers(list);
    this.routed.setIceServers(list);
  }

  /** A person came: a mesh connection to them, or (routed) their tile shows what we already get. */
  peerAdded(id, { initiator }) {
    if (this.mode === 'mesh') return this.s.mesh.add(id, { initiator });
    this.s.ui.setConn(id, this.conn);
    const stream = this.routed.streams.get(id);
    if (stream) this.s._remoteStream(id, stream);
    this.view.schedule();
    return null;
  }

  close() {
    this.routed.close();
    this.view.stop();
    clearNotice('update');
    this.toggle.hidden = true;
  }

  // ---- switching ----
  _leaveMode() {
    const s = this.s;
    if (this.mode === 'sfu') { this.routed.close(); this.view.stop(); } else s.mesh.closeAll();
    for (const id of s.peers.keys()) { s.ui.setStream(id, null); s.audio.detach(id); }
  }

  _openRouted() {
    const s = this.s;
    s.mesh.closeAll();
    this.routed.setIceServers(s.mesh.iceServers);
    this.routed.start(s.tracks);
    this.view.start();
  }

  /** Everyone we know of and have no connection to: the lower peer id offers (docs: "Room mode"). */
  _buildMesh() {
    const s = this.s;
    for (const id of s.peers.keys()) if (!s.mesh.pc(id)) s.mesh.add(id, { initiator: s.peerId < id });
  }

  _stream(id, stream) {
    if (!this.s.peers.has(id)) return;
    if (stream) this.s._remoteStream(id, stream);
    else { this.s.ui.setStream(id, null); this.s.audio.detach(id); }
    this.view.schedule();
  }

  _connState(state) {
    this.conn = state;
    for (const id of this.s.peers.keys()) {
      this.s.ui.setConn(id, state);
      tileConnection(this.s.ui.tiles.get(id), state);
    }
  }

  /** The badge (and the host's switch) say the mode we are in now. */
  _show() {
    const sfu = this.mode === 'sfu';
    this.badge.dataset.mode = this.mode;
    setIcon(this.badgeIcon, sfu ? 'server' : 'lock');
    setText(this.badgeText, sfu ? 'mode_sfu' : 'mode_mesh');
    setAttrText(this.badge, 'title', sfu ? 'mode_sfu_title' : 'mode_mesh_title');
    setAttrText(this.badge, 'aria-label', sfu ? 'mode_sfu_title' : 'mode_mesh_title');
    setText(this.toggle.querySelector('.mode-toggle-text'), sfu ? 'mode_to_mesh' : 'mode_to_sfu');
    setIcon(this.toggle.querySelector('.mode-toggle-icon'), sfu ? 'lock' : 'server');
    this.toggle.hidden = !(this.s.mod.host && this.available);
  }
}
