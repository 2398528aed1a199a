// Web Audio: what we hear from each remote peer goes source → gain (0–2) → speakers, so the
// per-person volume slider is exactly what the user hears; an analyser on every source (and on
// our own microphone) drives the speaking indicator.

export const VOLUMES_KEY = 'webcall.volumes'; // {user_id: gain} remembered between calls

const SPEAK_ON = 0.035;  // RMS of the waveform (0..1) to count as speaking
const SPEAK_OFF = 0.02;
const HOLD_MS = 350;

export class AudioEngine {
  constructor() {
    this.ctx = null;
    this.nodes = new Map(); // id → {src, analyser, gain, buf, level, speaking, quietSince, track}
    this.gains = new Map(); // id → gain (kept even before the audio arrives)
    this.silenced = new Set(); // ids whose sound is held back whatever the gain (moderation.js)
    this.onSpeaking = () => {};
    this.onBlocked = () => {};
    this.loop = 0;
    this.sinkId = '';
  }

  context() {
    if (this.ctx) return this.ctx;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    this.ctx = new AC({ latencyHint: 'interactive' });
    this.ctx.onstatechange = () => this.onBlocked(this.blocked);
    if (this.sinkId) this.setSink(this.sinkId);
    return this.ctx;
  }

  /** Play through the speaker `deviceId` ('' = the default) where AudioContext.setSinkId exists. */
  setSink(deviceId) {
    this.sinkId = deviceId || '';
    if (!this.ctx || typeof this.ctx.setSinkId !== 'function') return Promise.resolve(false);
    return this.ctx.setSinkId(this.sinkId).then(() => true, (e) => { console.warn('setSinkId', e); return false; });
  }

  /** The browser's autoplay policy holds audio until a user gesture. */
  get blocked() { return !!this.ctx && this.ctx.state === 'suspended'; }

  /** Call from a user gesture (click / key). */
  resume() {
    const ctx = this.context();
    return ctx && ctx.state !== 'running' ? ctx.resume().catch(() => {}) : Promise.resolve();
  }

  /**
   * Feed a track in. Remote (`local: false`): played through a GainNode. Local: analysed only.
   * Same track again: nothing changes.
   */
  attach(id, track, { local = false } = {}) {
    const have = this.nodes.get(id);
    if (have && have.track === track) return;
    this.detach(id);
    const ctx = this.context();
    if (!ctx || !track) return;
    const src = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    src.connect(analyser);
    let gain = null;
    if (!local) {
      gain = ctx.createGain();
      gain.gain.value = this.silenced.has(id) ? 0 : (this.gains.get(id) ?? 1);
      src.connect(gain).connect(ctx.destination);
    }
    this.nodes.set(id, { src, analyser, gain, track, buf: new Uint8Array(analyser.fftSize), level: 0, speaking: false, quietSince: 0 });
    if (!this.loop) this.loop = setInterval(() => this._measure(), 100);
    if (this.blocked) this.onBlocked(true);
  }

  detach(id) {
    const n = this.nodes.get(id);
    if (!n) return;
    try { n.src.disconnect(); n.gain?.disconnect(); } catch { /* already */ }
    this.nodes.delete(id);
    if (n.speaking) this.onSpeaking(id, false);
  }

  /** 0 … 2 (0–200 %). */
  setGain(id, value) {
    const v = Math.max(0, Math.min(2, Number(value)));
    this.gains.set(id, v);
    const n = this.nodes.get(id);
    if (n && n.gain) n.gain.gain.value = this.silenced.has(id) ? 0 : v;
    return v;
  }

  /** Hold back (or let through again) the sound of `id`, keeping its volume for later. */
  silence(id, on) {
    if (on) this.silenced.add(id); else this.silenced.delete(id);
    const n = this.nodes.get(id);
    if (n && n.gain) n.gain.gain.value = on ? 0 : (this.gains.get(id) ?? 1);
  }

  /** The gain actually applied in the audio graph (or the one waiting for the audio to arrive). */
  getGain(id) {
    const n = this.nodes.get(id);
    return n && n.gain ? n.gain.gain.value : (this.gains.get(id) ?? 1);
  }

  /** Smoothed loudness 0…1 of a source (what the speaking indicator uses). */
  level(id) { return this.nodes.get(id)?.level ?? 0; }

  _measure() {
    const now = performance.now();
    for (const [id, n] of this.nodes) {
      n.analyser.getByteTimeDomainData(n.buf);
      let sum = 0;
      for (let i = 0; i < n.buf.length; i++) { const x = (n.buf[i] - 128) / 128; sum += x * x; }
      const rms = Math.sqrt(sum / n.buf.length);
      n.level = n.level * 0.6 + rms * 0.4;
      const muted = !n.track.enabled || n.track.muted || n.track.readyState !== 'live';
      let speaking = n.speaking;
      if (!muted && n.level > SPEAK_ON) { speaking = true; n.quietSince = 0; } else if (muted || n.level < SPEAK_OFF) {
        if (!n.quietSince) n.quietSince = now;
        if (muted || now - n.quietSince > HOLD_MS) speaking = false;
      }
      if (speaking !== n.speaking) { n.speaking = speaking; this.onSpeaking(id, speaking); }
    }
  }

  close() {
    clearInterval(this.loop);
    this.loop = 0;
    for (const id of [...this.nodes.keys()]) this.detach(id);
    if (this.ctx) { this.ctx.close().catch(() => {}); this.ctx = null; }
  }
}

/** Remembered volumes per user id. */
export function savedVolume(userId) {
  try { const v = JSON.parse(localStorage.getItem(VOLUMES_KEY) || '{}')[userId]; return typeof v === 'number' ? v : 1; } catch { return 1; }
}

export function saveVolume(userId, gain) {
  try {
    const all = JSON.parse(localStorage.getItem(VOLUMES_KEY) || '{}');
    if (gain === 1) delete all[userId]; else all[userId] = gain;
    localStorage.setItem(VOLUMES_KEY, JSON.stringify(all));
  } catch { /* storage full or off */ }
}
