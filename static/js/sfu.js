// A routed call (SFU mode, docs/protocol.md "Routed calls"): one RTCPeerConnection to the server,
// which forwards everyone's media. We offer first with what we send (the microphone, the camera
// as three simulcast layers q/h/f, a screen share on a transceiver of its own while sharing); the
// server answers and later offers when others' tracks come or go, and we answer. We are the
// polite side: an offer of ours the server refuses as `busy` (it had one outstanding) goes again
// once we have answered its offer. Our ICE candidates trickle; the server's are in its SDP.
//
// Incoming tracks are matched to people by the ForwardedTrack list (mid → peer id + source): each
// person gets one MediaStream (their sound, and their screen share if any, else their camera),
// as a mesh connection gives, so tiles, volumes and speaking indicators work the same.

/** The camera's simulcast layers, in the order the server expects them (docs: "Media choices"). */
export const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

const BUSY_RETRY_MS = 400; // an offer the server was too busy for goes again after this (if still due)
const RESTART_MS = [1000, 2000, 5000, 10000, 30000]; // a failed connection starts over after these

export class Routed {
  /**
   * opts: send(signal) → bool (an SfuSignal over the socket), onStream(peerId, MediaStream | null),
   * onConnState(state), forceRelay.
   */
  constructor(opts) {
    this.o = opts;
    this.pc = null;
    this.iceServers = [];
    this.sending = { audio: null, camera: null, screen: null }; // our transceivers
    this.forwarded = new Map(); // mid → {peer_id, source}
    this.streams = new Map();   // peerId → MediaStream we hand to the tile
    this.watched = new WeakSet(); // received tracks we listen to
    this.queue = Promise.resolve();
    this.awaitingAnswer = false;
    this.offerDue = false;
    this.retryTimer = 0;
    this.restartTimer = 0;
    this.restarts = 0;
    this.generation = 0; // a step queued for a connection since closed does nothing
    this.fresh = true; // no answer yet on this connection: our offer asks the server for a new session
    this.closed = true;
    this.problems = []; // the last negotiation errors (window.webcall.routedProblems())
  }

  get open() { return !this.closed; }

  rtcConfig() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.o.forceRelay ? 'relay' : 'all', bundlePolicy: 'max-bundle' };
  }

  setIceServers(list) {
    this.iceServers = list || [];
    if (this.pc) { try { this.pc.setConfiguration(this.rtcConfig()); } catch (e) { this._problem('setConfiguration', e); } }
  }

  /** Opens the connection with what we send now ({audio, camera, screen}: tracks or null) and offers. */
  start(tracks) {
    this.close();
    this.closed = false;
    const pc = this.pc = new RTCPeerConnection(this.rtcConfig());
    this.sending.audio = pc.addTransceiver(tracks.audio || 'audio', { direction: 'sendonly' });
    this.sending.camera = pc.addTransceiver(tracks.camera || 'video', { direction: 'sendonly', sendEncodings: CAMERA_LAYERS.map((l) => ({ ...l })) });
    if (tracks.screen) this.sending.screen = pc.addTransceiver(tracks.screen, { direction: 'sendonly' });
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc) return;
      this.o.send(candidate
        ? { kind: 'candidate', candidate: candidate.candidate, sdp_mid: candidate.sdpMid }
        : { kind: 'candidate', candidate: '', sdp_mid: null });
    };
    pc.ontrack = () => this._assign();
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      this.o.onConnState(pc.connectionState);
      if (pc.connectionState === 'connected') this.restarts = 0;
      if (pc.connectionState === 'failed') this.restartSoon();
    };
    this.o.onConnState('connecting');
    this.fresh = true; // our first offer on this connection: the server starts a session anew
    this.negotiate();
  }

  /** Starts over after a pause that grows while it keeps failing. */
  restartSoon() {
    clearTimeout(this.restartTimer);
    const wait = RESTART_MS[Math.min(this.restarts, RESTART_MS.length - 1)];
    this.restarts += 1;
    this.restartTimer = setTimeout(() => this.restart(), wait);
  }

  /** A connection that failed (or a server that lost our session): start over with what we send. */
  restart() {
    if (this.closed) return;
    const tracks = { audio: this.sending.audio?.sender.track || null, camera: this.sending.camera?.sender.track || null,
      screen: this.sending.screen?.direction === 'sendonly' ? this.sending.screen.sender.track : null };
    this.start(tracks);
  }

  /**
   * What we send changed: swap tracks in place; a screen share starting or stopping renegotiates.
   * One change at a time (two at once could both add a screen transceiver).
   */
  update(tracks) {
    const { audio = null, camera = null, screen = null } = tracks || {};
    this.updating = (this.updating || Promise.resolve()).then(() => this._update({ audio, camera, screen })).catch((e) => this._problem('sfu update', e));
    return this.updating;
  }

  async _update({ audio, camera, screen }) {
    if (this.closed || !this.pc) return;
    const swap = async (tr, track) => { if (tr && tr.sender.track !== track) await tr.sender.replaceTrack(track).catch((e) => this._problem('replaceTrack', e)); };
    await swap(this.sending.audio, audio);
    await swap(this.sending.camera, camera);
    const tr = this.sending.screen;
    if (screen && !tr) {
      this.sending.screen = this.pc.addTransceiver(screen, { direction: 'sendonly' });
      this.negotiate();
    } else if (tr) {
      await swap(tr, screen);
      const direction = screen ? 'sendonly' : 'inactive';
      if (tr.direction !== direction) { tr.direction = direction; this.negotiate(); }
    }
  }

  /** Offer now if we may (stable, nothing of ours outstanding); else as soon as we may. */
  negotiate() {
    this.offerDue = true;
    this._run(() => this._offer());
  }

  /** An offer that waited (for the socket, say) goes now; nothing else changes. */
  flush() {
    this._run(() => this._offer());
  }

  /** Our offer is out and no answer has come (it may have been lost with a socket). */
  get waiting() { return this.awaitingAnswer; }

  async _offer() {
    const pc = this.pc;
    if (!pc || this.closed || !this.offerDue || this.awaitingAnswer || pc.signalingState !== 'stable') return;
    this.offerDue = false;
    await pc.setLocalDescription(await pc.createOffer());
    const tracks = [];
    const named = [[this.sending.audio, 'mic'], [this.sending.camera, 'camera'], [this.sending.screen, 'screen']];
    for (const [tr, source] of named) if (tr && tr.mid != null && tr.direction === 'sendonly') tracks.push({ mid: tr.mid, source });
    this.awaitingAnswer = true;
    if (!this.o.send({ kind: 'offer', sdp: pc.localDescription.sdp, tracks, fresh: this.fresh })) {
      // No socket now: offer again once it is back (resume calls restart or negotiate).
      this.awaitingAnswer = false;
      this.offerDue = true;
      await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
    }
  }

  /** An SfuReply from the server. */
  reply(r) {
    if (!r || this.closed) return;
    this._run(() => this._reply(r));
  }

  async _reply(r) {
    const pc = this.pc;
    if (!pc) return;
    switch (r.kind) {
      case 'answer':
        if (pc.signalingState !== 'have-local-offer') return;
        this._forwarded(r.tracks);
        await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
        this.awaitingAnswer = false;
        this.fresh = false;
        this._assign();
        break;
      case 'offer':
        // Polite: an offer of ours crossing it is rolled back (the server answers it `busy`).
        if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
        this.awaitingAnswer = false;
        this._forwarded(r.tracks);
        await pc.setRemoteDescription({ type: 'offer', sdp: r.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        this.o.send({ kind: 'answer', sdp: pc.localDescription.sdp });
        this._assign();
        break;
      case 'error':
        if (r.code === 'busy') {
          if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
          this.awaitingAnswer = false;
          this.offerDue = true;
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => this._run(() => this._offer()), BUSY_RETRY_MS);
          return;
        }
        this._problem('sfu error', `${r.code}: ${r.message}`);
        if (r.code === 'no_session' || r.code === 'failed') { this.awaitingAnswer = false; this.restartSoon(); return; }
        if (r.code === 'bad_sdp' && this.awaitingAnswer) {
          // Our offer was refused: back to where we were (what we send stays as it was negotiated).
          if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
          this.awaitingAnswer = false;
        }
        return;
      default: return; // a newer server's reply
    }
    await this._offer(); // something of ours waited for the exchange to finish
  }

  /** Something went wrong: on the console, and among the last few kept for diagnostics. */
  _problem(what, detail) {
    console.warn(what, detail);
    this.problems.push(`${what}: ${detail && detail.message ? detail.message : detail}`);
    if (this.problems.length > 20) this.problems.shift();
  }

  _run(step) {
    const generation = this.generation;
    this.queue = this.queue.then(() => (generation === this.generation ? step() : undefined)).catch((e) => this._problem('sfu negotiation', e));
    return this.queue;
  }

  _forwarded(list) {
    if (!Array.isArray(list)) return;
    this.forwarded = new Map(list.map((t) => [String(t.mid), { peer_id: t.peer_id, source: t.source }]));
  }

  /** Who each receiving transceiver carries now: one stream per person, updated in place. */
  _assign() {
    if (!this.pc) return;
    const got = new Map(); // peerId → {mic, camera, screen}
    for (const tr of this.pc.getTransceivers()) {
      const f = tr.mid != null && this.forwarded.get(tr.mid);
      if (!f || tr.currentDirection === 'stopped' || tr.currentDirection === 'inactive' || tr.currentDirection === 'sendonly') continue;
      const slot = got.get(f.peer_id) || {};
      slot[f.source] = tr.receiver.track;
      got.set(f.peer_id, slot);
    }
    for (const [id, stream] of this.streams) {
      if (!got.has(id)) { this.streams.delete(id); for (const t of stream.getTracks()) stream.removeTrack(t); this.o.onStream(id, null); }
    }
    for (const [id, slot] of got) {
      let changed = !this.streams.has(id);
      const stream = this.streams.get(id) || new MediaStream();
      this.streams.set(id, stream);
      const want = [slot.mic, slot.screen || slot.camera].filter(Boolean);
      for (const t of stream.getTracks()) if (!want.includes(t)) { stream.removeTrack(t); changed = true; }
      for (const t of want) {
        if (stream.getTracks().includes(t)) continue;
        stream.addTrack(t);
        changed = true;
        if (!this.watched.has(t)) {
          // A paused layer or a forwarded track that starts: the tile looks at its frames again.
          this.watched.add(t);
          t.addEventListener('unmute', () => { for (const [pid, s] of this.streams) if (s.getTracks().includes(t)) this.o.onStream(pid, s); });
        }
      }
      if (changed) this.o.onStream(id, stream);
    }
  }

  /** The sources each person sends us now ({peerId: Set of 'mic' | 'camera' | 'screen'}). */
  sources() {
    const out = new Map();
    for (const f of this.forwarded.values()) {
      if (!out.has(f.peer_id)) out.set(f.peer_id, new Set());
      out.get(f.peer_id).add(f.source);
    }
    return out;
  }

  close() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.restartTimer);
    this.generation += 1;
    this.closed = true;
    this.awaitingAnswer = false;
    this.offerDue = false;
    this.queue = Promise.resolve();
    const pc = this.pc;
    this.pc = null;
    this.sending = { audio: null, camera: null, screen: null };
    this.forwarded = new Map();
    for (const id of [...this.streams.keys()]) { this.streams.delete(id); this.o.onStream(id, null); }
    if (pc) pc.close();
  }
}
