// The pre-join screen at /r/{room}: the room's name and who is in its call, a camera preview, a
// mic level meter, device pickers and switches, "join with mic / camera off". Join hands the
// stream it already holds to the call (no second prompt, the camera light stays on).

import { $, h, setText, initials, hueOf, toast } from './common.js';
import { setIcon } from './icons.js';
import * as api from './api.js';
import { acquireLocalMedia, getTrack, reasonOf, canCapture } from './media.js';
import { PrejoinGate } from './roomaccess.js';
import { DevicePanel, LevelMeter, loadPrefs, savePrefs, rememberDevice, listDevices, chosenId, deviceOf, blurCapable } from './devices.js';

const POLL_MS = 5000;

export class PreJoin {
  /** opts: onJoin({media, prefs}), onBack(), onAuthLost() */
  constructor(opts) {
    this.o = opts;
    this.view = $('#prejoin');
    this.video = $('#prejoin-video');
    this.stage = $('#prejoin-stage');
    this.room = null;
    this.stream = null;
    this.ready = null;     // the pending acquisition
    this.timer = 0;
    this.abort = null;
    this.reason = null;
    this.gen = 0;          // each show() is a generation: a late answer from an earlier one is dropped
    this.meter = new LevelMeter($('#prejoin-level'));
    this.panel = new DevicePanel($('#prejoin-devices'), 'prejoin', {
      device: (kind, id) => this._pick(kind, id),
      option: (name, on) => this._option(name, on),
    });
    $('#prejoin-mic').addEventListener('click', () => this._toggleMic());
    $('#prejoin-cam').addEventListener('click', () => this._toggleCam());
    $('#prejoin-join').addEventListener('click', () => this._join());
    this.gate = new PrejoinGate(); // a room password, a private room, the lobby
    $('#prejoin-back').addEventListener('click', () => this.o.onBack());
    this._onDeviceChange = () => this._renderDevices();
    document.addEventListener('visibilitychange', () => { if (!this.view.hidden && !document.hidden) this._who(); });
  }

  get shown() { return !this.view.hidden; }

  show(room, me) {
    this.room = room;
    this.prefs = loadPrefs();
    this.view.hidden = false;
    document.title = `${room} · WebCall`;
    $('#prejoin-room').textContent = room;
    const av = $('#prejoin-avatar');
    av.textContent = initials(me.username);
    av.style.setProperty('--hue', hueOf(me.username));
    $('#prejoin-join').disabled = false;
    this._who();
    navigator.mediaDevices?.addEventListener?.('devicechange', this._onDeviceChange);
    this.ready = this._acquire(++this.gen);
  }

  /** Leave the screen; `keep`: the tracks go on into the call (else they stop). */
  hide({ keep = false } = {}) {
    this.view.hidden = true;
    this.gate.hide();
    clearTimeout(this.timer);
    this.abort?.abort();
    this.meter.detach();
    navigator.mediaDevices?.removeEventListener?.('devicechange', this._onDeviceChange);
    if (!keep && this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
    this.room = null;
    this.gen += 1;
  }

  // ---- who is inside ----
  async _who() {
    clearTimeout(this.timer);
    this.abort?.abort();
    const room = this.room;
    if (!room) return;
    const ctl = this.abort = new AbortController();
    const box = $('#prejoin-who');
    const people = $('#prejoin-people');
    if (api.isGuest()) { box.dataset.state = 'guest'; setText($('#prejoin-who-text'), 'guest_prejoin_who'); return; }
    try {
      const r = await api.getRoom(room, ctl.signal);
      this._people(r.people || []);
      $('#prejoin-join').disabled = !this.gate.update(room, r);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 401) { this.o.onAuthLost(); return; }
      if (e.status === 403) { $('#prejoin-join').disabled = !this.gate.refused(room, e); }
      people.replaceChildren();
      box.dataset.state = e.status === 404 ? 'new' : 'unknown';
      setText($('#prejoin-who-text'), e.status === 404 ? 'prejoin_new_room' : 'prejoin_who_unknown');
    }
    if (this.room === room && !document.hidden) this.timer = setTimeout(() => this._who(), POLL_MS);
  }

  _people(names) {
    $('#prejoin-who').dataset.state = names.length ? 'people' : 'empty';
    setText($('#prejoin-who-text'), names.length ? 'prejoin_inside' : 'prejoin_nobody', { n: names.length });
    $('#prejoin-people').replaceChildren(...names.map((n) => {
      const chip = h('li', { class: 'person', text: n, 'data-testid': 'prejoin-person' });
      chip.style.setProperty('--hue', hueOf(n));
      return chip;
    }));
  }

  /**
   * Demo mode (js/demo.js: no server, no devices): the screen as it looks, with a stand-in camera
   * `stream`, `people` inside and made-up devices. Join calls `onJoin()`.
   */
  showDemo({ room, me, people, stream, devices, onJoin }) {
    this.o = { ...this.o, onJoin: ({ media }) => { media.stream.getTracks().forEach((t) => t.stop()); onJoin(); } };
    this.room = room;
    this.prefs = loadPrefs();
    this.view.hidden = false;
    $('#prejoin-room').textContent = room;
    $('#prejoin-avatar').textContent = initials(me.username);
    $('#prejoin-avatar').style.setProperty('--hue', hueOf(me.username));
    this._people(people);
    this.stream = stream;
    this.ready = Promise.resolve();
    this._show();
    this._state('ok');
    const mic = $('#prejoin-mic'); // the stand-in has no sound: show the mic as on anyway
    mic.setAttribute('aria-pressed', 'true');
    setIcon($('.ctl-icon', mic), 'mic');
    $('#prejoin-level').hidden = false;
    $('#prejoin-level').style.setProperty('--level', '0.42');
    const first = (list) => (list[0] ? list[0].deviceId : '');
    this.devices = devices;
    this.panel.render(devices, { videoinput: first(devices.videoinput), audioinput: first(devices.audioinput), audiooutput: first(devices.audiooutput) }, this.prefs);
  }

  // ---- media ----
  async _acquire(gen) {
    this._state('asking');
    const p = this.prefs;
    const want = { audio: p.audioinput?.id || '', video: p.videoinput?.id || '' };
    const media = await acquireLocalMedia({ prefs: p, want });
    if (this.view.hidden || gen !== this.gen) { media.stream.getTracks().forEach((t) => t.stop()); return; }
    this.stream = media.stream;
    this.reason = media.reason;
    // A remembered device whose id changed (site data cleared): find it again by its label.
    const devices = await listDevices();
    if (gen !== this.gen) return;
    for (const [kind, k] of [['audioinput', 'audio'], ['videoinput', 'video']]) {
      const track = this.track(k);
      const id = chosenId(devices[kind], p[kind]);
      if (track && id && id !== deviceOf(track)) await this._replace(k, id);
    }
    const a = this.track('audio');
    if (a) a.enabled = !p.micOff;
    this._show();
    await this._renderDevices(devices);
  }

  /** The camera ('video') or microphone ('audio') track of the preview, or null. */
  track(kind) {
    return this.stream ? (kind === 'audio' ? this.stream.getAudioTracks()[0] : this.stream.getVideoTracks()[0]) || null : null;
  }

  /** Open `deviceId` for `kind` ('audio' | 'video') in place of the track we have. */
  async _replace(kind, deviceId) {
    const old = this.track(kind);
    // A phone opens one camera at a time: let go of the old one first.
    if (old) { old.stop(); this.stream.removeTrack(old); }
    try {
      const t = await getTrack(kind, { prefs: this.prefs, deviceId, exact: !!deviceId });
      if (this.view.hidden) { t.stop(); return; }
      if (kind === 'audio') t.enabled = !this.prefs.micOff;
      this.stream.addTrack(t);
      this.reason = null;
      if (kind === 'video' && this.prefs.backgroundBlur && blurCapable(t)) t.applyConstraints({ backgroundBlur: true }).catch(() => {});
    } catch (e) {
      this.reason = reasonOf(e);
    }
  }

  _show() {
    const v = this.track('video');
    const a = this.track('audio');
    // An unplugged camera or microphone ends its track: fall back to the default one.
    for (const t of [v, a]) if (t && !t.onended) t.onended = () => this._lost(t);
    this.video.srcObject = v ? new MediaStream([v]) : null;
    this.stage.dataset.video = String(!!v);
    this.meter.attach(a);
    const micOn = !!a && a.enabled;
    const camOn = !!v;
    for (const [btn, on, icOn, icOff] of [[$('#prejoin-mic'), micOn, 'mic', 'micOff'], [$('#prejoin-cam'), camOn, 'cam', 'camOff']]) {
      btn.setAttribute('aria-pressed', String(on));
      setIcon($('.ctl-icon', btn), on ? icOn : icOff);
    }
    $('#prejoin-mic').disabled = !canCapture();
    $('#prejoin-cam').disabled = !canCapture();
    $('#prejoin-level').hidden = !a;
    // What the user should know about their media, most important first.
    if (!a && !v) this._state(this.reason === 'denied' ? 'denied' : this.reason === 'insecure' ? 'insecure' : 'none', this.reason || 'no_device');
    else if (!a) this._state('no_mic', this.reason || 'no_device');
    else if (!v && !this.prefs.camOff) this._state('no_cam', this.reason || 'no_device');
    else if (!v) this._state('cam_off');
    else this._state('ok');
  }

  async _lost(track) {
    if (this.view.hidden || !this.stream || !this.stream.getTracks().includes(track)) return;
    const kind = track.kind === 'audio' ? 'audio' : 'video';
    toast(kind === 'audio' ? 'dev_lost_mic' : 'dev_lost_camera', { name: track.label || '' }, kind === 'audio' ? 'micOff' : 'camOff');
    await this._replace(kind, '');
    this._show();
    await this._renderDevices();
  }

  /** asking | ok | cam_off | denied | insecure | none | no_mic | no_cam; why: denied | no_device | busy | … */
  _state(state, why) {
    const el = $('#prejoin-media-state');
    el.dataset.state = state;
    el.hidden = state === 'ok';
    if (state !== 'ok') setText(el, `prejoin_state_${state}`, why ? { why: `@why_${why}` } : undefined);
  }

  async _renderDevices(devices) {
    const list = devices || await listDevices();
    if (this.view.hidden) return;
    const v = this.track('video');
    const current = {
      videoinput: deviceOf(v) || chosenId(list.videoinput, this.prefs.videoinput),
      audioinput: deviceOf(this.track('audio')) || chosenId(list.audioinput, this.prefs.audioinput),
      audiooutput: chosenId(list.audiooutput, this.prefs.audiooutput),
    };
    this.panel.render(list, current, this.prefs, { blur: blurCapable(v) });
    this.devices = list;
  }

  async _pick(kind, id) {
    const device = (this.devices?.[kind] || []).find((d) => d.deviceId === id);
    this.prefs = rememberDevice(kind, device || null);
    if (kind === 'audiooutput') return;
    const k = kind === 'audioinput' ? 'audio' : 'video';
    if (k === 'video' && this.prefs.camOff) return; // remembered for when the camera goes on
    await this._replace(k, id);
    this._show();
    await this._renderDevices();
  }

  async _option(name, on) {
    this.prefs = savePrefs({ [name]: on });
    if (name === 'backgroundBlur') {
      const v = this.track('video');
      if (v && blurCapable(v)) await v.applyConstraints({ backgroundBlur: on }).catch(() => {});
      return;
    }
    // Noise suppression and echo cancellation are chosen when the microphone opens.
    if (this.track('audio')) {
      await this._replace('audio', deviceOf(this.track('audio')));
      this._show();
    }
  }

  async _toggleMic() {
    await this.ready;
    const a = this.track('audio');
    if (!a) {
      await this._replace('audio', this.prefs.audioinput?.id || '');
      this.prefs = savePrefs({ micOff: false });
      const t = this.track('audio');
      if (t) t.enabled = true;
    } else {
      a.enabled = !a.enabled;
      this.prefs = savePrefs({ micOff: !a.enabled });
    }
    this._show();
    await this._renderDevices();
  }

  async _toggleCam() {
    await this.ready;
    const v = this.track('video');
    if (v) {
      v.stop(); // the camera light goes off
      this.stream.removeTrack(v);
      this.prefs = savePrefs({ camOff: true });
    } else {
      this.prefs = savePrefs({ camOff: false });
      await this._replace('video', chosenId(this.devices?.videoinput || [], this.prefs.videoinput));
    }
    this._show();
    await this._renderDevices();
  }

  async _join() {
    const btn = $('#prejoin-join');
    btn.disabled = true;
    await this.ready; // still asking for the camera: join with what it gives
    if (this.view.hidden) return;
    const stream = this.stream || new MediaStream();
    for (const t of stream.getTracks()) t.onended = null; // the call watches them from now on
    const a = stream.getAudioTracks()[0];
    const v = stream.getVideoTracks()[0];
    const mode = (a ? 'audio' : '') + (v ? 'video' : '');
    const media = {
      stream,
      mode: { audiovideo: 'av', audio: 'audio', video: 'video', '': 'none' }[mode],
      reason: this.reason,
      micOff: !!a && !a.enabled,
      camOff: !v && this.prefs.camOff,
    };
    const prefs = this.prefs;
    this.hide({ keep: true });
    this.o.onJoin({ media, prefs });
  }
}
