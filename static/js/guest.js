// The guest landing page, /join#TOKEN: an invite link's token is in the fragment, which the
// browser sends to no server (so no log and no Referer holds it). The page takes it out of the
// address bar at once, asks the server which room it leads to (no use counted), and asks for a
// name; Continue spends one use of the link for a guest pass (this tab only, sessionStorage) and
// goes to the room's pre-join screen, where the guest picks camera and microphone.
// /join?ended=REASON&room=NAME is where a guest's call ends (left, removed, room ended…).

import { $, initPage, setText, validRoom } from './common.js';
import * as api from './api.js';
import { guestPass, saveGuestPass } from './invites.js';

initPage();

const card = $('[data-testid=guest-card]');
const params = new URLSearchParams(location.search);
const token = location.hash.slice(1);
if (token) history.replaceState(null, '', '/join');

const PROBLEMS = {
  invite_not_found: ['guest_bad_title', 'guest_bad_text'],
  invite_expired: ['guest_expired_title', 'guest_expired_text'],
  invite_used_up: ['guest_used_title', 'guest_used_text'],
  missing: ['guest_bad_title', 'guest_missing_text'],
  unreachable: ['guest_offline_title', 'err_unreachable'],
  left: ['guest_left_title', 'guest_left_text'],
  kicked: ['guest_kicked_title', 'guest_kicked_text'],
  room_deleted: ['guest_ended_title', 'guest_ended_text'],
  expired: ['guest_pass_title', 'guest_pass_text'],
  closed: ['guest_closed_title', 'guest_closed_text'],
};

function problem(kind, room) {
  const [title, text] = PROBLEMS[kind] || PROBLEMS.closed;
  card.dataset.state = kind;
  $('#guest-loading').hidden = true;
  $('#guest-form').hidden = true;
  $('#guest-problem').hidden = false;
  setText($('#guest-problem-title'), title, { room: room || '' });
  setText($('#guest-problem-text'), text, { room: room || '' });
  // After a call: back in while this tab's pass lasts (not after being removed or the room's end).
  const pass = guestPass();
  const rejoin = $('#guest-rejoin');
  rejoin.hidden = !(pass && ['left', 'closed'].includes(kind) && validRoom(pass.room));
  if (!rejoin.hidden) rejoin.href = `/r/${encodeURIComponent(pass.room)}`;
}

async function start() {
  if (params.has('ended')) return problem(params.get('ended'), params.get('room'));
  if (!token) return problem('missing');
  let invite;
  try {
    invite = await api.request('/api/v1/guest/invite', { method: 'POST', auth: false, body: { token } });
  } catch (e) {
    return problem(PROBLEMS[e.code] ? e.code : (e.status === 0 ? 'unreachable' : 'invite_not_found'));
  }
  card.dataset.state = 'ready';
  $('#guest-loading').hidden = true;
  $('#guest-room').textContent = invite.room;
  $('#guest-form').hidden = false;
  $('#guest-name').focus();
}

$('#guest-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('#guest-name').value.trim().replace(/\s+/g, ' ');
  const fieldError = $('#guest-name-error');
  fieldError.hidden = true;
  $('#guest-error').hidden = true;
  if (!name || name.length > 32) {
    fieldError.hidden = false;
    setText(fieldError, 'guest_name_invalid');
    return;
  }
  const submit = $('#guest-submit');
  submit.disabled = true;
  try {
    const d = await api.request('/api/v1/guest', { method: 'POST', auth: false, body: { token, name } });
    const pass = saveGuestPass(d);
    location.replace(`/r/${encodeURIComponent(pass.room)}`);
  } catch (err) {
    submit.disabled = false;
    if (err.field === 'name') {
      fieldError.hidden = false;
      setText(fieldError, 'guest_name_invalid');
    } else if (PROBLEMS[err.code]) {
      problem(err.code);
    } else {
      $('#guest-error').hidden = false;
      setText($('#guest-error'), err.status === 0 ? 'err_unreachable' : 'inv_error', { code: err.code });
    }
  }
});

start();
