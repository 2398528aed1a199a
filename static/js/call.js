// The mesh: one RTCPeerConnection per remote peer, perfect negotiation, ICE restart,
// ICE-server refresh and per-sender bitrate/resolution caps by the number of peers.

/** Camera caps by how many copies we send: [max remote peers, kbit/s, max height, max fps]. */
const CAMERA_CAPS = [
  [1, 1500, 720, 30],
  [2, 1000, 540, 30],
  [3, 700, 480, 25],
  [5, 380, 360, 20],
  [8, 250, 270, 15],
  [Infinity, 160, 180, 12],
];

/** Caps for one video sender when we send to `peers` remote peers. */
export function capsFor(peers, { screen = false } = {}) {
  const n = Math.max(1, peers);
  const [, kbps, height, fps] = CAMERA_CAPS.find(([max]) => n <= max);
  if (screen) {
    // Text must stay sharp: more bits, more pixels, fewer frames.
    return { maxBitrate: Math.round(kbps * 1.6) * 1000, maxHeight: n <= 2 ? 1080 : n <= 5 ? 720 : 540, maxFramerate: n <= 2 ? 15 : 8 };
  }
  return { maxBitrate: kbps * 1000, maxHeight: height, maxFramerate: fps };
}

class Peer {
  constructor(mesh, id, initiator) {
    this.mesh = mesh;
    this.id = id;
    this.polite = mesh.selfId < id; // string compare, as the protocol's clients agree
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.answerPending = false;
    this.queue = Promise.resolve();
    this.stream = new MediaStream();
    this.restartTimer = 0;
    this.senders = { audio: null, video: null };
    this.waitTimer = 0;
    this.attached = false;
    const pc = this.pc = new RTCPeerConnection(mesh.rtcConfig());


    pc.ontrack = ({ track }) => {
      for (const old of this.stream.getTracks()) if (old.kind === track.kind && old !== track) this.stream.removeTrack(old);
      if (!this.stream.getTracks().includes(track)) this.stream.addTrack(track);
      track.addEventListener('ended', () => { this.stream.removeTrack(track); mesh.o.onTrack(id, this.stream); });
      track.addEventListener('mute', () => mesh.o.onTrack(id, this.stream));
      track.addEventListener('unmute', () => mesh.o.onTrack(id, this.stream));
      mesh.o.onTrack(id, this.stream);
    };
    pc.onicecandidate = ({ candidate }) => { if (candidate) mesh.o.send(id, { candidate: candidate.toJSON() }); };
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        mesh.o.send(id, { sdp: pc.localDescription.toJSON() });
      } catch (e) {
        console.warn('offer failed', id, e);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onsignalingstatechange = () => { if (pc.signalingState === 'stable') this.applyCaps(); };
    pc.onconnectionstatechange = () => {
      mesh.o.onConnState(id, pc.connectionState);
      if (pc.connectionState === 'failed') this.restartIce();
    };
    pc.oniceconnectionstatechange = () => {
      const s = pc.iceConnectionState;
      clearTimeout(this.restartTimer);
      if (s === 'failed') this.restartIce();
      else if (s === 'disconnected') this.restartTimer = setTimeout(() => { if (pc.iceConnectionState === 'disconnected') this.restartIce(); }, 4000);
    };

    // Who offers first: the newcomer (it got us in `welcome`) — so the first exchange has no
    // glare. The other side waits for that offer and attaches its tracks to the answer; if the
    // offer does not come, it offers itself. Perfect negotiation covers every later renegotiation.
    this.attached = false;
    if (initiator) this._attach();
    else this.waitTimer = setTimeout(() => { if (!this.attached) this._attach(); }, 4000);
  }

  /** Start sending what we have; as the initiator also ask to receive what we do not send. */
  _attach() {
    this.attached = true;
    clearTimeout(this.waitTimer);
    const ops = [];
    for (const kind of ['audio', 'video']) {
      const track = this.mesh.tracks[kind];
      if (track) ops.push(this.setTrack(kind, track));
      else if (!this.pc.getTransceivers().some((t) => t.receiver.track.kind === kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    return Promise.all(ops);
  }

  restartIce() {
    if (this.pc.signalingState === 'closed') return;
    if (this.pc.restartIce) this.pc.restartIce();
    else this.pc.setLocalDescription().catch(() => {}); // very old browsers: best effort
  }

  /** Signals are handled strictly in order (each awaits the previous). */
  handle(data) {
    this.queue = this.queue.then(() => this._handle(data)).catch((e) => console.warn('signal failed', this.id, e));
    return this.queue;
  }

  async _handle({ sdp, candidate }) {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return;
    if (sdp) {
      // Perfect negotiation (W3C WebRTC §10.7).
      const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.answerPending);
      const collision = sdp.type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      this.answerPending = sdp.type === 'answer';
      await pc.setRemoteDescription(sdp); // rolls back our own offer if we are polite
      this.answerPending = false;
      if (sdp.type === 'offer') {
        if (!this.attached) await this._attach(); // our tracks ride on this answer
        await pc.setLocalDescription();
        this.mesh.o.send(this.id, { sdp: pc.localDescription.toJSON() });
      }
    } else if (candidate) {
      try { await pc.addIceCandidate(candidate); } catch (e) { if (!this.ignoreOffer) throw e; }
    }
  }

  /** Put `track` (or null) on the sender of its kind; add a sender if there is none yet. */
  async setTrack(kind, track) {
    if (!this.attached) return; // attached when the first offer comes (mesh.tracks is read then)
    const pc = this.pc;
    let sender = this.senders[kind];
    if (!sender) {
      // A transceiver the remote offer created (we were receive-only) can start sending.
      const tr = pc.getTransceivers().find((t) => t.currentDirection !== 'stopped' && t.receiver.track.kind === kind && !t.sender.track
        && !Object.values(this.senders).includes(t.sender));
      if (tr && track) {
        await tr.sender.replaceTrack(track);
        tr.sender.setStreams?.(this.mesh.localStream);
        if (tr.direction === 'recvonly' || tr.direction === 'inactive') tr.direction = tr.direction === 'recvonly' ? 'sendrecv' : 'sendonly';
        this.senders[kind] = tr.sender;
      } else if (track) {
        this.senders[kind] = pc.addTrack(track, this.mesh.localStream);
      }
    } else {
      await sender.replaceTrack(track);
    }
    if (kind === 'video') await this.applyCaps();
  }

  async applyCaps() {
    const sender = this.senders.video;
    if (!sender || !sender.track || this.pc.signalingState === 'closed') return;
    const caps = capsFor(this.mesh.peers.size, { screen: this.mesh.screen });
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) return; // not negotiated yet: again when stable
    const enc = params.encodings[0];
    const height = sender.track.getSettings().height || 0;
    enc.maxBitrate = caps.maxBitrate;
    enc.maxFramerate = caps.maxFramerate;
    enc.scaleResolutionDownBy = height > caps.maxHeight ? height / caps.maxHeight : 1;
    if (this.mesh.screen) params.degradationPreference = 'maintain-resolution';
    try { await sender.setParameters(params); } catch (e) { console.warn('setParameters', e); }
  }

  close() {
    clearTimeout(this.restartTimer);
    clearTimeout(this.waitTimer);
    this.pc.close();
  }
}

export class Mesh {
  /**
   * opts: send(peerId, data), onTrack(peerId, MediaStream), onConnState(peerId, state),
   * forceRelay: bool
   */
  constructor(opts) {
    this.o = opts;
    this.selfId = '';
    this.iceServers = [];
    this.peers = new Map();
    this.localStream = new MediaStream();
    this.tracks = { audio: null, video: null };
    this.screen = false;
  }

  rtcConfig() {
    return {
      iceServers: this.iceServers,
      iceTransportPolicy: this.o.forceRelay ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    };
  }

  /** New ICE servers (fresh TURN credentials) for every connection. */
  setIceServers(list) {
    this.iceServers = list || [];
    for (const p of this.peers.values()) {
      try { p.pc.setConfiguration(this.rtcConfig()); } catch (e) { console.warn('setConfiguration', e); }
    }
  }

  /** What we send: a track per kind (null = nothing). Applies to every connection. */
  async setTrack(kind, track, { screen } = {}) {
    const old = this.tracks[kind];
    if (old) this.localStream.removeTrack(old);
    if (track) this.localStream.addTrack(track);
    this.tracks[kind] = track;
    if (kind === 'video' && screen !== undefined) this.screen = screen;
    await Promise.all([...this.peers.values()].map((p) => p.setTrack(kind, track).catch((e) => console.warn('setTrack', e))));
  }

  /** initiator: we joined after them (they were in our welcome), so we make the first offer. */
  add(peerId, { initiator = false } = {}) {
    if (this.peers.has(peerId)) return this.peers.get(peerId);
    const p = new Peer(this, peerId, initiator);
    this.peers.set(peerId, p);
    this.applyCaps();
    return p;
  }

  remove(peerId) {
    const p = this.peers.get(peerId);
    if (!p) return;
    p.close();
    this.peers.delete(peerId);
    this.applyCaps();
  }

  signal(from, data) {
    const p = this.peers.get(from);
    if (p && data) p.handle(typeof data === 'string' ? JSON.parse(data) : data);
  }

  applyCaps() { for (const p of this.peers.values()) p.applyCaps(); }

  closeAll() {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }

  /** For tests and diagnostics. */
  pc(peerId) { return this.peers.get(peerId)?.pc || null; }
}
