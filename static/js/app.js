// The app page (index.html, also served at /r/{room}): sign-in check, lobby, call.

import { $, initPage, validRoom, isLoopback, showNotice, clearNotice, toast, initials, hueOf } from './common.js';
import * as api from './api.js';
import { CallUI } from './ui.js';
import { ChatPanel } from './chat.js';
import { Lobby } from './lobby.js';
import { CallSession } from './session.js';
import { confirmDialog } from './dialog.js';
import { mountReactions } from './reactions.js';
import { initFeedback, showLeft, hideLeft } from './feedback.js';
import { PreJoin } from './prejoin.js';
import { forgetPass } from './roomaccess.js';
import { CallSettings } from './settings.js';
import { guestPass, endAsGuest } from './invites.js';

const bg = initPage();
const params = new URLSearchParams(location.search);
const forceRelay = params.get('forceRelay') === '1';

let me = null;
let session = null;
const ui = new CallUI();
const chat = new ChatPanel({
  onSend: (text) => {
    if (session && session.sig.send({ type: 'chat', text })) return true;
    toast('not_connected', null, 'alert');
    return false;
  },
  onLoadMore: async (before) => {
    const d = await api.roomMessages(session.room, before, 50);
    return (d && d.messages) || [];
  },
  call: () => session && { room: session.room, peerId: session.peerId },
});
const lobby = new Lobby({ onJoin: (name) => navigate(name, true), onAuthLost: goSignIn });
initFeedback();
mountReactions((emoji) => ui.on.react && ui.on.react(emoji));
const prejoin = new PreJoin({
  onJoin: ({ media }) => startCall(roomFromLocation(), media),
  onBack: () => navigate(null),
  onAuthLost: goSignIn,
});
const settings = new CallSettings(() => session);

// ---- URLs: one address per room, /r/{room}; the query (forceRelay=1…) is kept ----
function roomFromLocation() {
  const m = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (m) { try { return decodeURIComponent(m[1]); } catch { return ''; } }
  return new URLSearchParams(location.hash.slice(1)).get('room');
}

function urlFor(room) {
  if (room) return `/r/${encodeURIComponent(room)}${location.search}`;
  return `/static/index.html${location.search}`;
}

/** The old form (index.html#room=NAME) becomes /r/NAME in the address bar, history untouched. */
function canonicalUrl() {
  if (location.pathname.startsWith('/r/')) return;
  const room = new URLSearchParams(location.hash.slice(1)).get('room');
  if (room) history.replaceState(null, '', urlFor(room));
}

function navigate(room) {
  const url = urlFor(room);
  if (url !== location.pathname + location.search + location.hash) history.pushState(null, '', url);
  route();
}

function goSignIn() {
  if (session) { session._cleanup(); session = null; }
  if (me && me.guest) { endAsGuest('expired', roomFromLocation()); return; }
  prejoin.hide();
  api.clearToken();
  location.replace(`/static/auth.html?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`);
}

const END_NOTICE = {
  kicked: 'end_kicked', room_banned: 'end_room_banned', room_deleted: 'end_room_deleted', room_full: 'end_room_full',
  room_limit: 'end_room_limit', rate_limited: 'end_rate_limited', too_big: 'end_too_big', closed: 'end_closed',
  room_private: 'end_room_private', room_password: 'end_room_password', denied: 'end_denied',
  banned: 'end_banned', room_locked: 'end_room_locked',
};

function route() {
  canonicalUrl();
  const room = roomFromLocation();
  $('#loading').hidden = true;
  if (me && me.guest && room !== me.room) { // a guest has no lobby and no other room
    if (session) { const s = session; session = null; s.leave('navigated'); }
    endAsGuest('left', me.room);
    return;
  }
  hideLeft();
  if (room && validRoom(room)) {
    if (session && session.room === room) return;
    if (session) { session.leave('navigated'); session = null; }
    if (prejoin.shown && prejoin.room === room) return;
    if (prejoin.shown) prejoin.hide();
    clearNotice('ended');
    lobby.hide();
    bg.setQuiet(true);
    prejoin.show(room, me);
    return;
  }
  if (prejoin.shown) prejoin.hide();
  if (session) { const s = session; session = null; s.leave('navigated'); }
  if (room) showNotice({ id: 'bad-room', kind: 'error', key: 'err_room_name_link', args: { room } });
  bg.setQuiet(false);
  lobby.show(me);
}

/** Join `room` with the media the pre-join screen holds (Join is a click: sound may start). */
function startCall(room, media) {
  if (!room || !validRoom(room) || session) { media.stream.getTracks().forEach((t) => t.stop()); return; }
  session = new CallSession({
    room, me, ui, chat, forceRelay,
    onEnd: (reason) => {
      session = null;
      settings.close();
      if (reason === 'navigated') return; // route() goes on to where we are going
      if (me.guest) { endAsGuest(reason, room); return; }
      if (reason === 'room_password') forgetPass(room); // the password changed: ask again
      if (reason === 'left') { // the Leave button: "You left ROOM — Rejoin / Back to rooms"
        history.pushState(null, '', urlFor(null));
        lobby.hide();
        bg.setQuiet(false);
        showLeft(room, () => route());
        return;
      }
      if (END_NOTICE[reason]) showNotice({ id: 'ended', kind: 'error', icon: 'alert', key: END_NOTICE[reason], args: { room } });
      navigate(null);
    },
    onAuthLost: goSignIn,
  });
  session.start({ gesture: true, media });
}

function showUser() {
  const chip = $('#user-chip');
  chip.hidden = false;
  $('#user-name').textContent = me.username;
  const av = $('#user-avatar');
  av.textContent = initials(me.username);
  av.style.setProperty('--hue', hueOf(me.username));
}

/** A guest (invite link): this tab's pass, for its room only; no lobby, no account. */
function mainAsGuest(pass) {
  api.useGuestToken(pass.token);
  me = { id: pass.id, username: pass.name, guest: true, room: pass.room };
  showUser();
  $('#logout').hidden = true;
  $('#brand').addEventListener('click', async (e) => {
    e.preventDefault();
    if (session && !(await confirmDialog({ title: 'leave_confirm_title', body: 'leave_confirm_body',
      ok: 'leave_confirm_ok', args: { room: session.room }, danger: true }))) return;
    if (session) { const s = session; session = null; s.leave('navigated'); }
    endAsGuest('left', pass.room);
  });
  window.addEventListener('pagehide', () => { if (session) session.sig.leave(); });
  window.addEventListener('popstate', () => route());
  route();
}

async function main() {
  canonicalUrl();
  const pass = guestPass();
  if (pass && pass.room === roomFromLocation()) return mainAsGuest(pass);
  if (!api.getToken()) return goSignIn();
  try {
    me = await api.me();
  } catch (e) {
    if (e.status === 401) return goSignIn();
    $('#loading').hidden = true;
    showNotice({ id: 'offline', kind: 'error', key: 'err_unreachable', dismissible: false,
      action: { key: 'retry', testid: 'retry', onClick: () => location.reload() } });
    return;
  }
  api.startTokenRefresh();
  api.onSessionLost(goSignIn);
  showUser();
  $('#logout').addEventListener('click', async () => {
    if (session && !(await confirmDialog({ title: 'logout_confirm_title', body: 'logout_confirm_body',
      ok: 'logout_confirm_ok', args: { room: session.room }, danger: true }))) return;
    if (session) { const s = session; session = null; s.leave('navigated'); }
    prejoin.hide();
    await api.logout();
    location.replace('/static/auth.html');
  });
  $('#brand').addEventListener('click', async (e) => {
    e.preventDefault();
    if (session && !(await confirmDialog({ title: 'leave_confirm_title', body: 'leave_confirm_body',
      ok: 'leave_confirm_ok', args: { room: session.room }, danger: true }))) return;
    navigate(null);
  });
  window.addEventListener('pagehide', () => { if (session) session.sig.leave(); });
  window.addEventListener('popstate', () => route());
  window.addEventListener('hashchange', () => route());
  route();
}

// Hooks for tests and diagnostics (no secrets here).
window.webcall = Object.freeze({
  get peerId() { return session ? session.peerId : null; },
  get room() { return session ? session.room : null; },
  peers: () => (session ? [...session.peers.values()].map((p) => ({ ...p })) : []),
  /** The gain really applied in the Web Audio graph for a remote peer (0–2). */
  gain: (peerId) => (session ? session.audio.getGain(peerId) : null),
  /** Loudness 0…1 measured from a peer's received audio ('local' = our microphone). */
  level: (peerId) => (session ? session.audio.level(peerId) : null),
  audioState: () => (session && session.audio.ctx ? session.audio.ctx.state : null),
  /** The speaker the call's sound plays through (AudioContext.sinkId; '' = the default), if known. */
  audioSink: () => (session && session.audio.ctx && 'sinkId' in session.audio.ctx ? session.audio.ctx.sinkId : null),
  pc: (peerId) => (session ? session.mesh.pc(peerId) : null),
  /** The camera ('video') or microphone ('audio') track we send (or the pre-join holds), or null. */
  localTrack: (kind) => {
    if (session) return kind === 'audio' ? session.tracks.audio : session.tracks.camera;
    return prejoin.shown ? prejoin.track(kind) : null;
  },
  stats: (peerId) => (session && session.mesh.pc(peerId) ? session.mesh.pc(peerId).getStats() : null),
  /** How the call's media travels now: 'mesh' or 'sfu' (routed through the server). */
  mediaMode: () => (session ? session.routes.mode : null),
  /** The connection to the server in a routed call, or null. */
  routedPc: () => (session ? session.routes.routed.pc : null),
  /** Who the routed connection's receiving transceivers carry: [{mid, peer_id, source}]. */
  forwarded: () => (session ? [...session.routes.routed.forwarded].map(([mid, f]) => ({ mid, ...f })) : []),
  /** The last errors of the routed connection's negotiation (strings), for diagnostics. */
  routedProblems: () => (session ? [...session.routes.routed.problems] : []),
  /** What we last told the server we show ([{peer_id, source, width, height}]). */
  view: () => (session ? session.routes.view.tiles() : []),
});

// ?demo=call|lobby renders fake content for screenshots, without a server. Loopback hosts only.
if (params.has('demo') && isLoopback()) {
  import('./demo.js').then((m) => m.runDemo(params.get('demo'), { ui, chat, lobby, prejoin, bg, count: Number(params.get('peers')) || 2 }));
} else {
  main();
}
