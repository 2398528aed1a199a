// One call: local media + signaling + the mesh + Web Audio, driving the call view.

import * as api from './api.js';
import { Signaling } from './signaling.js';
import { Mesh } from './call.js';
import { AudioEngine, savedVolume, saveVolume } from './audio.js';
import { acquireLocalMedia, getTrack, getScreenTrack, canShareScreen, reasonOf } from './media.js';
import { loadPrefs, savePrefs, rememberDevice, listDevices, chosenId, deviceOf, blurCapable } from './devices.js';
import { showNotice, clearNotice, toast } from './common.js';
import { showReaction } from './reactions.js';
import { QualityMonitor } from './quality.js';
import { tileConnection, setAloneRoom } from './feedback.js';
import { Moderation } from './moderation.js';
import { invitesFor, markGuest } from './invites.js';
import { CallAccess } from './roomaccess.js';
import { MediaRoutes } from './routes.js';
import { Recording } from './recording.js';

export class CallSession {
  /**
   * opts: room, me {id, username}, ui (CallUI), chat (ChatPanel), forceRelay,
   * onEnd(reason) — the call is over (left, kicked, room deleted, full…), onAuthLost()
   */
  constructor(opts) {
    this.o = opts;
    this.room = opts.room;
    this.me = opts.me;
    this.ui = opts.ui;
    this.chat = opts.chat;
    this.peerId = '';
    this.owner = false;
    this.peers = new Map();            // peerId → {peer_id, user_id, username, state}
    this.pendingSignals = new Map();   // signals from a peer we have not heard of yet
    this.state = { audio: false, video: false, screen: false, hand: false };
    this.tracks = { audio: null, camera: null, screen: null };
    this.iceTimer = 0;
    this.ended = false;
    this.audio = new AudioEngine();
    this.mesh = new Mesh({
      forceRelay: opts.forceRelay,
      send: (to, data) => this.sig.send({ type: 'signal', to, data }),
      onTrack: (id, stream) => this._remoteStream(id, stream),
      onConnState: (id, s) => { this.ui.setConn(id, s); tileConnection(this.ui.tiles.get(id), s); },
    });
    this.sig = new Signaling({
      room: this.room,
      getToken: api.getToken,
      refreshToken: api.refreshToken,
      checkToken: api.checkToken,
      onFrame: (f) => this._frame(f),
      onStatus: (s) => this.ui.setStatus(s === 'open' ? 'connected' : s),
      onFatal: (reason) => this._end(reason),
      onAuthLost: () => { this._cleanup(); this.o.onAuthLost(); },
    });
    this.mod = new Moderation(this);
    this.access = new CallAccess(this); // the lobby, knocks, room access settings
    this.routes = new MediaRoutes(this); // mesh or routed through the server (sfu.js)
    this.rec = new Recording(this);
    this.quality = new QualityMonitor({
      pcOf: (id) => this.mesh.pc(id),
      tileOf: (id) => this.ui.tiles.get(id),
      peers: () => [...this.peers.keys()],
    });
  }

  /**
   * gesture: started by a click (so sound may play right away). media: what the pre-join screen
   * holds ({stream, mode, reason, micOff, camOff}); without it the camera and mic are asked for here.
   */
  async start({ gesture = false, media: ready = null } = {}) {
    const ui = this.ui;
    this.audio.onSpeaking = (id, on) => ui.setSpeaking(id, on);
    ui.levelOf = (id) => this.audio.level(id); // the large tile follows the active speaker
    this.audio.onBlocked = (blocked) => this._audioBlocked(blocked);
    if (gesture) this.audio.resume(); else this.audio.context();
    this._unlock = () => this.audio.resume();
    document.addEventListener('pointerdown', this._unlock, true);
    document.addEventListener('keydown', this._unlock, true);

    ui.on = {
      mic: () => this.toggleMic(),
      cam: () => this.toggleCam(),
      screen: () => this.toggleScreen(),
      hand: () => this.toggleHand(),
      leave: () => this.leave(),
      volume: (id, g) => this.setVolume(id, g),
      kick: (id) => this.mod.confirmRemove(id),
      react: (emoji) => this.sig.send({ type: 'reaction', emoji }),
      copyLink: () => copyLink(this.room),
    };
    ui.show(this.room);
    setAloneRoom(this.room, () => copyLink(this.room));
    this.quality.start();
    ui.setStatus('connecting');
    this.chat.reset(this.me.id, { room: this.room, guest: !!this.me.guest });
    ui.setLocal({ username: this.me.username, stream: null, state: this.state });
    this._controls();

    this.prefs = loadPrefs();
    if (this.prefs.audiooutput?.id) this.audio.setSink(this.prefs.audiooutput.id);
    const media = ready || await acquireLocalMedia({ prefs: this.prefs, want: { audio: this.prefs.audioinput?.id, video: this.prefs.videoinput?.id } });
    if (this.ended) { media.stream.getTracks().forEach((t) => t.stop()); return; }
    this.tracks.audio = media.stream.getAudioTracks()[0] || null;
    this.tracks.camera = media.stream.getVideoTracks()[0] || null;
    if (this.tracks.audio && media.micOff) this.tracks.audio.enabled = false;
    this.state.audio = !!this.tracks.audio && this.tracks.audio.enabled;
    this.state.video = !!this.tracks.camera;
    this._watchDevice(this.tracks.audio);
    this._watchDevice(this.tracks.camera);
    this._onDeviceChange = () => this._devicesChanged();
    navigator.mediaDevices?.addEventListener?.('devicechange', this._onDeviceChange);
    if (media.mode !== 'av' && media.reason) {
      showNotice({ id: 'media', kind: 'warn', icon: media.mode === 'none' ? 'volume' : 'camOff',
        key: media.mode === 'audio' ? 'notice_audio_only' : 'notice_receive_only', args: { why: `@why_${media.reason}` } });
    }
    await this.routes.setTrack('audio', this.tracks.audio);
    await this.routes.setTrack('video', this.tracks.camera);
    if (this.tracks.audio) this.audio.attach('local', this.tracks.audio, { local: true });
    this._localPreview();
    this.sig.connect();
  }

  // ---- frames ----
  _frame(f) {
    switch (f.type) {
      case 'welcome': return this._welcome(f);
      case 'peer_joined':
        if (f.peer && !this.peers.has(f.peer.peer_id)) toast('peer_joined', { name: f.peer.username }, 'users');
        return this._addPeer(f.peer);
      case 'peer_left': {
        const p = this.peers.get(f.peer_id);
        // room_deleted: the close (4004) that follows says it once, for everyone.
        if (p && f.reason !== 'room_deleted') toast(f.reason === 'timeout' ? 'peer_lost' : f.reason === 'kicked' ? 'peer_kicked' : 'peer_left', { name: p.username }, 'logout');
        return this._removePeer(f.peer_id);
      }
      case 'peer_state': {
        const p = this.peers.get(f.peer_id);
        if (!p) return;
        if (f.state.hand && !p.state.hand) toast('hand_up', { name: p.username }, 'hand');
        p.state = f.state;
        return this.ui.setState(f.peer_id, f.state);
      }
      case 'signal': {
        if (this.peers.has(f.from)) return this.mesh.signal(f.from, f.data);
        const q = this.pendingSignals.get(f.from) || [];
        q.push(f.data);
        this.pendingSignals.set(f.from, q);
        setTimeout(() => this.pendingSignals.delete(f.from), 10000);
        return;
      }
      case 'chat':
        if (this.chat.add(f)) this.ui.bumpUnread();
        return;
      case 'chat_deleted': this.chat.remove(f.id); return; // a file deleted (by its sender, a host, or its age)
      case 'reaction':
        return showReaction(this.ui.tiles.get(f.peer_id === this.peerId ? 'local' : f.peer_id), f.emoji);
      case 'error': return this._error(f);
      default: // moderation, routing, recording, lobby; a newer server's frames are ignored
        if (!this.mod.frame(f) && !this.routes.frame(f) && !this.rec.frame(f)) this.access.frame(f);
        return;
    }
  }

  _welcome(f) {
    const fresh = !f.resumed || f.peer_id !== this.peerId;
    this.owner = !!f.owner;
    if (f.self) this.me = { ...this.me, id: f.self.user_id || this.me.id, username: f.self.username || this.me.username };
    if (fresh) {
      for (const id of [...this.peers.keys()]) this._removePeer(id);
      this.peerId = f.peer_id;
      this.mesh.selfId = f.peer_id;
    }
    this.mod.welcome(f);
    this.chat.setHost(this.mod.host);
    this.chat.setFileLimit(f.attachment_max_bytes);
    invitesFor(this.ui).show(this.room, this.mod.host);
    if (this.me.guest) markGuest(this.ui.tiles.get('local'));
    this.access.welcome(f);
    this.routes.welcome(f);
    this.rec.welcome(f);
    this.ui.setOwner({ id: f.owner_id || (this.owner ? this.me.id : ''), me: this.owner, canKick: this.mod.host });
    if (f.ice_servers) {
      this.routes.setIceServers(f.ice_servers.iceServers || []);
      this._scheduleIce(f.ice_servers.ttl);
    }
    const present = new Set((f.peers || []).map((p) => p.peer_id));
    for (const id of [...this.peers.keys()]) if (!present.has(id)) this._removePeer(id);
    // Fresh join: we are the newcomer and offer to everyone. Resumed: anyone we do not know joined
    // while we were away, saw us in their welcome and offers to us.
    for (const p of f.peers || []) this._addPeer(p, { initiator: fresh });
    this.routes.joined(fresh);
    const history = f.chat || [];
    const firstJoin = this.chat.ids.size === 0;
    this.chat.addMany(history);
    if (firstJoin) this.chat.setHasMore(history.length >= 50);
    this._sendState();
  }

  _error(f) {
    if (this.routes.error(f) || this.rec.error(f)) return;
    switch (f.code) {
      case 'peer_not_found': return; // they just left
      case 'room_full': this.fullError = true; return; // the close (4009) follows
      case 'room_locked': return; // the close (4005) says it
      case 'rate_limited': return toast('err_rate_limited', null, 'alert');
      case 'forbidden': case 'not_room_owner': return toast('err_not_room_owner', null, 'alert');
      case 'hosts_only': return this.mod.refused();
      default:
        if (/chat|text/.test(`${f.code} ${f.message || ''}`)) return toast('chat_rejected', null, 'alert');
        return toast('err_server', { code: f.code }, 'alert');
    }
  }

  // ---- peers ----
  _addPeer(p, { initiator = false } = {}) {
    if (!p || p.peer_id === this.peerId) return;
    const known = this.peers.get(p.peer_id);
    if (known) {
      known.state = p.state || known.state;
      this.ui.setState(p.peer_id, known.state);
      return;
    }
    const peer = { ...p, state: p.state || { audio: false, video: false, screen: false, hand: false } };
    this.peers.set(p.peer_id, peer);
    const gain = savedVolume(p.user_id);
    this.audio.setGain(p.peer_id, gain);
    this.ui.addPeer(peer, { gain, canKick: this.mod.host });
    if (p.guest) markGuest(this.ui.tiles.get(p.peer_id));
    this.mod.peerChanged(p.peer_id);
    this.routes.peerAdded(p.peer_id, { initiator });
    const pending = this.pendingSignals.get(p.peer_id);
    if (pending) { this.pendingSignals.delete(p.peer_id); for (const d of pending) this.mesh.signal(p.peer_id, d); }
  }

  _removePeer(id) {
    this.mesh.remove(id);
    this.audio.detach(id);
    this.ui.removeTile(id);
    this.peers.delete(id);
  }

  _remoteStream(id, stream) {
    this.ui.setStream(id, stream);
    const a = stream.getAudioTracks()[0];
    if (a) this.audio.attach(id, a); else this.audio.detach(id);
  }

  /** 0 … 2; returns the gain now applied. */
  setVolume(id, gain) {
    this.audio.setGain(id, gain);
    const p = this.peers.get(id);
    if (p && p.user_id) saveVolume(p.user_id, gain);
    this.audio.resume(); // moving a slider is a gesture
    return this.audio.getGain(id);
  }

  // ---- our state ----
  _sendState() {
    this.sig.send({ type: 'state', state: { ...this.state } });
    this.ui.setState('local', this.state);
    this._controls();
  }

  _controls() {
    this.ui.setControls({ ...this.state, canScreen: canShareScreen() });
  }

  _localPreview() {
    const v = this.state.screen ? this.tracks.screen : this.tracks.camera;
    this.ui.setStream('local', v ? new MediaStream([v]) : null);
    this.ui.setState('local', this.state);
    this.routes.sync(); // routed: the camera and the screen have senders of their own
  }

  async toggleMic() {
    if (!this.state.audio && !this.mod.maySpeak()) return;
    if (!this.tracks.audio) {
      try { this.tracks.audio = await getTrack('audio', this._want('audio')); } catch (e) { return toast('mic_failed', { why: `@why_${reasonOf(e)}` }, 'micOff'); }
      if (this.ended) { this.tracks.audio.stop(); return; }
      this._watchDevice(this.tracks.audio);
      await this.routes.setTrack('audio', this.tracks.audio);
      this.audio.attach('local', this.tracks.audio, { local: true });
      this.state.audio = true;
      savePrefs({ micOff: false });
      clearNotice('media');
    } else {
      this.state.audio = !this.state.audio;
      this.tracks.audio.enabled = this.state.audio;
      savePrefs({ micOff: !this.state.audio });
    }
    this._sendState();
  }

  async toggleCam() {
    if (this.state.video) {
      this.state.video = false;
      const cam = this.tracks.camera;
      this.tracks.camera = null;
      if (!this.state.screen) await this.routes.setTrack('video', null);
      cam?.stop(); // the camera light goes off
      savePrefs({ camOff: true });
    } else {
      let cam;
      try { cam = await getTrack('video', this._want('video')); } catch (e) { return toast('cam_failed', { why: `@why_${reasonOf(e)}` }, 'camOff'); }
      if (this.ended) { cam.stop(); return; }
      this.tracks.camera = cam;
      this._watchDevice(cam);
      this._applyBlur(cam);
      this.state.video = true;
      savePrefs({ camOff: false });
      if (!this.state.screen) await this.routes.setTrack('video', cam);
    }
    this._localPreview();
    this._sendState();
  }

  async toggleScreen() {
    if (this.state.screen) return this._stopScreen();
    let track;
    try { track = await getScreenTrack(); } catch (e) {
      if (e && e.name !== 'NotAllowedError' && e.name !== 'AbortError') toast('screen_failed', null, 'screen');
      return;
    }
    if (this.ended) { track.stop(); return; }
    this.tracks.screen = track;
    track.addEventListener('ended', () => this._stopScreen());
    this.state.screen = true;
    await this.routes.setTrack('video', track, { screen: true });
    this._localPreview();
    this._sendState();
  }

  async _stopScreen() {
    if (!this.state.screen) return;
    this.state.screen = false;
    const s = this.tracks.screen;
    this.tracks.screen = null;
    await this.routes.setTrack('video', this.tracks.camera, { screen: false });
    s?.stop();
    this._localPreview();
    this._sendState();
  }

  toggleHand() {
    this.state.hand = !this.state.hand;
    this._sendState();
  }

  // ---- devices: switched in place (RTCRtpSender.replaceTrack), no renegotiation ----
  /** Constraints options for a new track of `kind` on the remembered device. */
  _want(kind, deviceId) {
    const prefs = this.prefs || loadPrefs();
    const pref = kind === 'audio' ? prefs.audioinput : prefs.videoinput;
    return { prefs, deviceId: deviceId ?? (pref?.id || ''), exact: deviceId !== undefined && !!deviceId };
  }

  /** The deviceIds in use now: {videoinput, audioinput, audiooutput}. */
  currentDevices(devices) {
    const prefs = this.prefs || loadPrefs();
    return {
      videoinput: deviceOf(this.tracks.camera) || chosenId(devices.videoinput, prefs.videoinput),
      audioinput: deviceOf(this.tracks.audio) || chosenId(devices.audioinput, prefs.audioinput),
      audiooutput: this.audio.sinkId || chosenId(devices.audiooutput, prefs.audiooutput),
    };
  }

  blurCapable() { return blurCapable(this.tracks.camera); }

  /** Use another camera / microphone / speaker (remembered). `device`: a MediaDeviceInfo or null (default). */
  async switchDevice(kind, device) {
    const id = device ? device.deviceId : '';
    this.prefs = rememberDevice(kind, device);
    if (kind === 'audiooutput') return this.audio.setSink(id);
    return this._reopen(kind === 'audioinput' ? 'audio' : 'video', id);
  }

  /** Noise suppression / echo cancellation (a new microphone track), background blur (the camera's). */
  async setOption(name, on) {
    this.prefs = savePrefs({ [name]: on });
    if (name === 'backgroundBlur') return this._applyBlur(this.tracks.camera);
    if (this.tracks.audio) return this._reopen('audio', deviceOf(this.tracks.audio));
  }

  _applyBlur(track) {
    if (!track || !blurCapable(track)) return;
    track.applyConstraints({ backgroundBlur: !!(this.prefs || loadPrefs()).backgroundBlur }).catch(() => {});
  }

  /**
   * A new track of `kind` ('audio' | 'video') from `deviceId` ('' = the default) in place of the
   * one we send: the senders swap it with replaceTrack, so no offer/answer happens. A camera that
   * is off stays off (the choice is remembered for when it goes on).
   */
  async _reopen(kind, deviceId) {
    const old = kind === 'audio' ? this.tracks.audio : this.tracks.camera;
    if (!old) return;
    let track;
    try {
      track = await getTrack(kind, this._want(kind, deviceId));
    } catch (e) {
      // A phone opens one camera at a time: let go of the old one and try again.
      if (kind !== 'video' || reasonOf(e) !== 'busy') return toast(kind === 'audio' ? 'mic_failed' : 'cam_failed', { why: `@why_${reasonOf(e)}` }, 'alert');
      old.stop();
      try { track = await getTrack(kind, this._want(kind, deviceId)); } catch (e2) {
        return toast('cam_failed', { why: `@why_${reasonOf(e2)}` }, 'camOff');
      }
    }
    if (this.ended || old !== (kind === 'audio' ? this.tracks.audio : this.tracks.camera)) { track.stop(); return; }
    this._watchDevice(track);
    if (kind === 'audio') {
      track.enabled = old.enabled;
      this.tracks.audio = track;
      await this.routes.setTrack('audio', track);
      this.audio.attach('local', track, { local: true });
    } else {
      this.tracks.camera = track;
      this._applyBlur(track);
      if (!this.state.screen) await this.routes.setTrack('video', track);
      this._localPreview();
    }
    old.stop();
  }

  /** An unplugged camera or microphone ends its track: fall back to the default and say so. */
  _watchDevice(track) {
    if (!track) return;
    track.addEventListener('ended', () => {
      if (this.ended) return;
      const kind = track.kind === 'audio' ? 'audio' : 'video';
      if (track !== (kind === 'audio' ? this.tracks.audio : this.tracks.camera)) return; // replaced by us
      toast(kind === 'audio' ? 'dev_lost_mic' : 'dev_lost_camera', { name: track.label || '' }, kind === 'audio' ? 'micOff' : 'camOff');
      this._fallBack(kind, track);
    });
  }

  async _fallBack(kind, gone) {
    let track = null;
    try { track = await getTrack(kind, { prefs: this.prefs || loadPrefs() }); } catch { /* none left */ }
    if (this.ended || gone !== (kind === 'audio' ? this.tracks.audio : this.tracks.camera)) { track?.stop(); return; }
    if (track) this._watchDevice(track);
    if (kind === 'audio') {
      if (track) track.enabled = gone.enabled;
      this.tracks.audio = track;
      this.state.audio = !!track && track.enabled;
      await this.routes.setTrack('audio', track);
      if (track) this.audio.attach('local', track, { local: true }); else this.audio.detach('local');
    } else {
      this.tracks.camera = track;
      this.state.video = !!track;
      if (!this.state.screen) await this.routes.setTrack('video', track);
      this._localPreview();
    }
    this._sendState();
    this.onDevices?.();
  }

  /** A device came or went: a chosen speaker that is gone falls back to the default. */
  async _devicesChanged() {
    const devices = await listDevices();
    if (this.ended) return;
    if (this.audio.sinkId && !devices.audiooutput.some((d) => d.deviceId === this.audio.sinkId)) {
      this.audio.setSink('');
      toast('dev_lost_speaker', null, 'volume');
    }
    this.onDevices?.();
  }

  // ---- ICE servers: new TURN credentials before the old ones expire ----
  _scheduleIce(ttl) {
    clearTimeout(this.iceTimer);
    if (!ttl || ttl <= 0) return;
    const ms = Math.min(Math.max(30, ttl * 0.8) * 1000, 2 ** 31 - 1);
    this.iceTimer = setTimeout(async () => {
      try {
        const d = await api.iceServers();
        this.routes.setIceServers(d.iceServers || []);
        this._scheduleIce(d.ttl);
      } catch {
        this._scheduleIce(75); // try again in a minute
      }
    }, ms);
  }

  _audioBlocked(blocked) {
    if (!blocked || this.ended) { clearNotice('audio'); return; }
    showNotice({ id: 'audio', kind: 'info', icon: 'volume', key: 'notice_audio_blocked', dismissible: false,
      action: { key: 'enable_sound', testid: 'enable-sound', onClick: (n) => { this.audio.resume(); n.remove(); } } });
  }

  // ---- the end ----
  /** reason: 'left' (the Leave button) or 'navigated' (went elsewhere: no "you left" view). */
  leave(reason = 'left') {
    if (this.ended) return;
    this.sig.leave();
    this._end(reason);
  }

  _end(reason) {
    if (this.ended) return;
    this._cleanup();
    this.o.onEnd(this.fullError && reason === 'closed' ? 'room_full' : reason);
  }

  _cleanup() {
    this.ended = true;
    clearTimeout(this.iceTimer);
    this.chat.uploads.reset(); // files still being sent stop with the call
    this.quality.stop();
    setAloneRoom('');
    this.sig._end();
    this.mesh.closeAll();
    this.routes.close();
    this.rec.close();
    for (const t of Object.values(this.tracks)) t?.stop();
    navigator.mediaDevices?.removeEventListener?.('devicechange', this._onDeviceChange);
    this.audio.close();
    document.removeEventListener('pointerdown', this._unlock, true);
    document.removeEventListener('keydown', this._unlock, true);
    clearNotice('media');
    clearNotice('audio');
    this.ui.hide();
  }
}

/** Copy the shareable link of a room. */
export async function copyLink(room) {
  const url = `${location.origin}/r/${encodeURIComponent(room)}`;
  try {
    await navigator.clipboard.writeText(url);
    toast('link_copied', null, 'check');
  } catch {
    toast('link_is', { url }, 'link');
  }
}
