// Cameras, microphones and speakers: the list (enumerateDevices), the user's choices remembered in
// localStorage (by deviceId, with the label as a fallback: ids change when a browser clears site
// data), and the panel of pickers and switches shared by the pre-join screen and the in-call
// settings dialog.

import { h, setText } from './common.js';
import { hydrateIcons } from './icons.js';

export const DEVICES_KEY = 'webcall.devices';

/** What is remembered: chosen devices ({id, label} per kind), join muted / camera off, processing. */
const DEFAULTS = {
  videoinput: null, audioinput: null, audiooutput: null,
  micOff: false, camOff: false,
  noiseSuppression: true, echoCancellation: true, backgroundBlur: false,
};

export const KINDS = ['videoinput', 'audioinput', 'audiooutput'];

export function loadPrefs() {
  try { return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(DEVICES_KEY) || '{}') }; } catch { return { ...DEFAULTS }; }
}

export function savePrefs(patch) {
  const next = { ...loadPrefs(), ...patch };
  try { localStorage.setItem(DEVICES_KEY, JSON.stringify(next)); } catch { /* storage full or off */ }
  return next;
}

/** Remember `device` (a MediaDeviceInfo or {deviceId, label}) as the choice for its kind. */
export function rememberDevice(kind, device) {
  return savePrefs({ [kind]: device ? { id: device.deviceId, label: device.label || '' } : null });
}

/** Speakers can be chosen: Web Audio plays through AudioContext.setSinkId (Chromium 110+). */
export const canPickSpeaker = () => typeof window.AudioContext === 'function' && 'setSinkId' in AudioContext.prototype;

/** {videoinput: [], audioinput: [], audiooutput: []} — labels are empty until permission is given. */
export async function listDevices() {
  const out = { videoinput: [], audioinput: [], audiooutput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  try {
    for (const d of await navigator.mediaDevices.enumerateDevices()) {
      if (out[d.kind] && d.deviceId !== 'communications') out[d.kind].push(d);
    }
  } catch { /* no devices then */ }
  return out;
}

/** The deviceId of the remembered choice in `list`: same id, else same label, else '' (default). */
export function chosenId(list, pref) {
  if (!pref) return '';
  const byId = list.find((d) => d.deviceId && d.deviceId === pref.id);
  if (byId) return byId.deviceId;
  const byLabel = pref.label && list.find((d) => d.label === pref.label);
  return byLabel ? byLabel.deviceId : '';
}

/** The device a live track comes from (its settings' deviceId), '' when unknown. */
export const deviceOf = (track) => (track && track.getSettings ? track.getSettings().deviceId || '' : '');

/** Whether the browser offers background blur on this camera track (a platform effect). */
export function blurCapable(track) {
  try {
    const caps = track && track.getCapabilities ? track.getCapabilities() : {};
    return Array.isArray(caps.backgroundBlur) && caps.backgroundBlur.includes(true);
  } catch { return false; }
}

/**
 * The pickers (camera, microphone, speaker) and switches (noise suppression, echo cancellation,
 * background blur where the platform has it). `prefix` makes the test ids: `${prefix}-camera`…
 * on.device(kind, deviceId), on.option(name, bool)
 */
export class DevicePanel {
  constructor(root, prefix, on) {
    this.root = root;
    this.on = on;
    this.prefix = prefix;
    this.selects = {};
    const pick = (kind, key, ic) => {
      const id = `${prefix}-${key}`;
      const sel = h('select', { id, 'data-testid': id, class: 'dev-select' });
      sel.addEventListener('change', () => this.on.device(kind, sel.value));
      this.selects[kind] = sel;
      return h('div', { class: 'dev-field', dataset: { kind } },
        h('label', { for: id }, h('span', { class: 'dev-icon', 'data-icon': ic }), h('span', { i18n: `dev_${key}` })),
        sel);
    };
    this.speakerNote = h('p', { class: 'dev-note muted', 'data-testid': `${prefix}-speaker-note`, i18n: 'dev_speaker_unsupported', hidden: true });
    this.switches = {};
    const sw = (name) => {
      const id = `${prefix}-${name}`;
      const input = h('input', { type: 'checkbox', id, 'data-testid': id, role: 'switch' });
      input.addEventListener('change', () => this.on.option(name, input.checked));
      this.switches[name] = input;
      return h('label', { class: 'dev-switch', for: id, dataset: { option: name } }, input, h('span', { class: 'dev-switch-track' }), h('span', { i18n: `dev_${name}` }));
    };
    this.blurNote = h('p', { class: 'dev-note muted', 'data-testid': `${prefix}-blur-note`, i18n: 'dev_blur_unsupported' });
    this.blurRow = sw('backgroundBlur');
    root.replaceChildren(
      pick('videoinput', 'camera', 'cam'),
      pick('audioinput', 'microphone', 'mic'),
      pick('audiooutput', 'speaker', 'volume'),
      this.speakerNote,
      h('div', { class: 'dev-switches' }, sw('noiseSuppression'), sw('echoCancellation'), this.blurRow),
      this.blurNote,
    );
    hydrateIcons(root);
  }

  /**
   * Fill the pickers. current: {videoinput, audioinput, audiooutput} deviceIds in use ('' = default);
   * prefs: the remembered switches; blur: whether the camera offers background blur.
   */
  render(devices, current, prefs, { blur = false } = {}) {
    for (const kind of KINDS) {
      const sel = this.selects[kind];
      const list = devices[kind];
      const field = sel.closest('.dev-field');
      field.hidden = kind === 'audiooutput' && !canPickSpeaker();
      const opts = [];
      // Before access is given, browsers list a device or so per kind with no id and no name.
      const hidden = list.length && list.every((d) => !d.deviceId);
      if (!list.length || hidden) {
        opts.push(h('option', { value: '', i18n: hidden ? 'dev_no_access' : kind === 'audiooutput' ? 'dev_default' : 'dev_none' }));
      } else {
        list.forEach((d, i) => {
          const label = d.label || null;
          const o = h('option', { value: d.deviceId });
          if (label) o.textContent = label; else setText(o, `dev_${kind}_n`, { n: i + 1 });
          opts.push(o);
        });
      }
      sel.replaceChildren(...opts);
      sel.disabled = !list.length || hidden;
      const want = current[kind];
      if (want && list.some((d) => d.deviceId === want)) sel.value = want;
      else if (list.length && !hidden) sel.value = list.some((d) => d.deviceId === 'default') ? 'default' : list[0].deviceId;
    }
    this.speakerNote.hidden = canPickSpeaker();
    for (const [name, input] of Object.entries(this.switches)) input.checked = !!prefs[name];
    this.blurRow.hidden = !blur;
    this.blurNote.hidden = blur;
  }

  /** Show that the pickers are waiting for permission (labels come with it). */
  setBusy(busy) { this.root.setAttribute('aria-busy', String(busy)); }
}

/** A mic level meter: a bar whose --level (0–1) follows the track's loudness. */
export class LevelMeter {
  constructor(el) {
    this.el = el;
    this.ctx = null;
    this.timer = 0;
    this.level = 0;
  }

  attach(track) {
    this.detach();
    if (!track) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    this.ctx = new AC();
    const src = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const an = this.ctx.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    const buf = new Uint8Array(an.fftSize);
    this.timer = setInterval(() => {
      if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
      an.getByteTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) { const x = (buf[i] - 128) / 128; sum += x * x; }
      const rms = track.enabled && track.readyState === 'live' ? Math.sqrt(sum / buf.length) : 0;
      this.level = this.level * 0.5 + rms * 0.5;
      const shown = Math.min(1, this.level * 4); // speech is ~0.05–0.25 RMS: make it visible
      this.el.style.setProperty('--level', shown.toFixed(3));
      this.el.dataset.level = shown.toFixed(3);
      this.el.setAttribute('aria-valuenow', shown.toFixed(2));
    }, 80);
  }

  detach() {
    clearInterval(this.timer);
    this.timer = 0;
    if (this.ctx) { this.ctx.close().catch(() => {}); this.ctx = null; }
    this.level = 0;
    this.el.style.setProperty('--level', '0');
    this.el.dataset.level = '0';
  }
}
