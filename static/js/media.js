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
 * Try audio+video, then audio only, then nothing (receive-only).
 * → { stream: MediaStream, mode: 'av' | 'audio' | 'none', reason } — reason says why we got less.
 */
export async function acquireLocalMedia() {
  const stream = new MediaStream();
  if (!canCapture()) return { stream, mode: 'none', reason: reasonOf(null) };
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: AUDIO, video: VIDEO });
    s.getTracks().forEach((t) => stream.addTrack(t));
    return { stream, mode: 'av', reason: null };
  } catch (e) {
    const reason = reasonOf(e);
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: AUDIO });
      s.getTracks().forEach((t) => stream.addTrack(t));
      return { stream, mode: 'audio', reason };
    } catch (e2) {
      return { stream, mode: 'none', reason: reasonOf(e2) };
    }
  }
}

/** A fresh camera or microphone track, or throws. */
export async function getTrack(kind) {
  if (!canCapture()) throw Object.assign(new Error('no mediaDevices'), { name: 'SecurityError' });
  const s = await navigator.mediaDevices.getUserMedia(kind === 'video' ? { video: VIDEO } : { audio: AUDIO });
  return s.getTracks()[0];
}

/** A screen / window / tab capture track, or throws (the user may cancel). */
export async function getScreenTrack() {
  const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  const track = s.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}
