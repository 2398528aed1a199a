// Local media: camera + microphone with graceful fallbacks, and screen capture.

export const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
export const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };

export const canCapture = () => !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
export const canShareScreen = () => !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);

/** Why getUserMedia failed, as a short reason: denied | no_device | busy | insecure | failed. */
export function reasonOf(err) {
  if (!canCapture()) return window.isSecureContext ? 'failed' : 'insecure';
  switch (err && err.name) {
    case 'NotAllowedError': case 'SecurityError': return 'denied';
    case 'NotFoundError': case 'OverconstrainedError': case 'DevicesNotFoundError': return 'no_device';
    case 'NotReadableError': case 'TrackStartError': case 'AbortError': return 'busy';
    default: return 'failed';
  }
}

/**
 * Constraints for a camera (`video`) or microphone (`audio`) track: the device (`{exact}` when the
 * user just picked it from the list, `{ideal}` for a remembered one that may be gone) and the
 * processing switches (noise suppression, echo cancellation) from the remembered choices.
 */
export function constraints(kind, { prefs = {}, deviceId = '', exact = false } = {}) {
  const c = kind === 'video' ? { ...VIDEO } : {
    ...AUDIO,
    noiseSuppression: prefs.noiseSuppression ?? AUDIO.noiseSuppression,
    echoCancellation: prefs.echoCancellation ?? AUDIO.echoCancellation,
  };
  if (deviceId) c.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return c;
}

/**
 * Try audio+video, then audio only, then nothing (receive-only). `want`: {audio, video} deviceIds
 * ('' = the default), `prefs` the remembered choices (camOff: do not open the camera at all).
 * → { stream: MediaStream, mode: 'av' | 'audio' | 'video' | 'none', reason } — reason says why we
 * got less than we asked for (null when we got it, or when the camera was left off on purpose).
 */
export async function acquireLocalMedia({ prefs = {}, want = {} } = {}) {
  const stream = new MediaStream();
  if (!canCapture()) return { stream, mode: 'none', reason: reasonOf(null) };
  const audio = constraints('audio', { prefs, deviceId: want.audio });
  const video = constraints('video', { prefs, deviceId: want.video });
  const take = (s) => s.getTracks().forEach((t) => stream.addTrack(t));
  const mode = () => (stream.getAudioTracks().length ? 'audio' : '') + (stream.getVideoTracks().length ? 'video' : '');
  const named = { audiovideo: 'av', audio: 'audio', video: 'video', '': 'none' };
  let reason = null;
  if (!prefs.camOff) {
    try {
      take(await navigator.mediaDevices.getUserMedia({ audio, video }));
      return { stream, mode: 'av', reason: null };
    } catch (e) {
      reason = reasonOf(e);
    }
  }
  try { take(await navigator.mediaDevices.getUserMedia({ audio })); } catch (e) { reason = reason || reasonOf(e); }
  if (!prefs.camOff && !stream.getAudioTracks().length) {
    // No microphone (or it is refused) but maybe a camera.
    try { take(await navigator.mediaDevices.getUserMedia({ video })); } catch { /* nothing then */ }
  }
  return { stream, mode: named[mode()], reason: named[mode()] === 'av' ? null : reason };
}

/** A fresh camera (`video`) or microphone (`audio`) track, or throws. opts as for constraints(). */
export async function getTrack(kind, opts = {}) {
  if (!canCapture()) throw Object.assign(new Error('no mediaDevices'), { name: 'SecurityError' });
  const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, opts) });
  return s.getTracks()[0];
}

/** A screen / window / tab capture track, or throws (the user may cancel). */
export async function getScreenTrack() {
  const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  const track = s.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}
