// Who may enter a room, in the web client (docs/protocol.md "Access to rooms" and "Lobby").
//
// - PrejoinGate (the pre-join screen): a room with a password shows a password field; the right
//   password buys a room pass (POST /api/v1/rooms/{room}/pass), kept in sessionStorage for this
//   tab and sent as `&pass=` when joining (never the password). A private room's non-member is
//   told so; a room that asks to join says the host will let them in.
// - CallAccess (the call): while the server says `waiting`, a full-screen "Waiting for the host to
//   let you in" (or "no host here yet") with Cancel; a host gets a panel "X wants to join — Admit /
//   Deny" for each `knock` (gone at `knock_ended`) and a count on the people button; and, for
//   hosts, "Room access" in the participant list: a dialog for the access level, the password,
//   "ask to join" and the members.
//
// Test hooks: room-gate, room-gate-note, room-password, room-password-ok, lobby-waiting,
// lobby-waiting-text, lobby-cancel, knocks, knock, knock-admit, knock-deny, knock-count,
// room-access-open, access-dialog, access-level, access-ask, access-password,
// access-password-remove, access-save, access-members, access-member-name, access-member-add,
// access-member-remove, access-close.

import { $, h, setText, setAttrText, toast } from './common.js';
import { icon } from './icons.js';
import * as api from './api.js';

/** The close codes of admission (signaling.js ends the call with these reasons). */
export const ACCESS_CLOSE = { 4010: 'room_private', 4011: 'room_password', 4012: 'denied' };

const PASS_KEY = (room) => `webcall.roompass.${room}`;

/** The room pass this tab holds for `room`, if it has not expired. */
export function passFor(room) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(PASS_KEY(room)) || 'null');
    if (kept && Date.parse(kept.expires_at) > Date.now()) return kept.pass;
  } catch { /* nothing kept */ }
  return null;
}

/** The server refused our pass (a new password): ask again next time. */
export function forgetPass(room) {
  sessionStorage.removeItem(PASS_KEY(room));
}

const roomPath = (room, tail = '') => `/api/v1/rooms/${encodeURIComponent(room)}${tail}`;

export class PrejoinGate {
  constructor() {
    this.note = h('p', { class: 'access-note', 'data-testid': 'room-gate-note', role: 'status' });
    this.input = h('input', { type: 'password', class: 'input', 'data-testid': 'room-password', autocomplete: 'off', maxlength: '128' });
    setAttrText(this.input, 'placeholder', 'access_password_placeholder');
    setAttrText(this.input, 'aria-label', 'access_password_placeholder');
    this.ok = h('button', { type: 'submit', class: 'btn btn-primary btn-small', 'data-testid': 'room-password-ok', i18n: 'access_unlock' });
    this.field = h('div', { class: 'access-password-row' }, this.input, this.ok);
    this.box = h('form', { class: 'access-gate', 'data-testid': 'room-gate', onsubmit: (e) => { e.preventDefault(); this._unlock(); } },
      this.note, this.field);
    this.box.hidden = true;
    $('#prejoin-devices').before(this.box);
    this.room = null;
  }

  /** What GET /api/v1/rooms/{room} said; returns whether Join may be pressed. */
  update(room, r) {
    this.room = room;
    $('#prejoin-who').hidden = r.admission === 'password_required'; // nobody is shown before the password
    const needs = r.admission === 'password_required' && !passFor(room);
    if (r.admission === 'password_required' && !needs) return this._say('access_password_ok', 'ok');
    if (needs) {
      if (this.box.hidden || this.field.hidden) { this._say('access_password_needed', 'lock', true); this.input.focus(); }
      return false;
    }
    if (r.admission === 'wait') return this._say(r.locked ? 'access_locked_note' : 'access_ask_note', 'info');
    this.box.hidden = true;
    return true;
  }

  /** GET refused (403): private, or banned from it. Join stays off. */
  refused(room, e) {
    this.room = room;
    this._say(e.code === 'room_private' ? 'access_private_note' : 'end_room_banned', 'error');
    return false;
  }

  hide() { this.box.hidden = true; this.room = null; $('#prejoin-who').hidden = false; }

  _say(key, kind, field = false) {
    this.box.hidden = false;
    this.box.dataset.kind = kind;
    setText(this.note, key, { room: this.room });
    this.field.hidden = !field;
    return kind !== 'error' && !field;
  }

  async _unlock() {
    const room = this.room;
    if (!room || !this.input.value) return;
    this.ok.disabled = true;
    try {
      const got = await api.request(roomPath(room, '/pass'), { method: 'POST', body: { password: this.input.value } });
      sessionStorage.setItem(PASS_KEY(room), JSON.stringify(got));
      this.input.value = '';
      this._say('access_password_ok', 'ok');
      $('#prejoin-join').disabled = false;
    } catch (e) {
      const key = e.code === 'too_many_attempts' ? 'access_password_throttled' : e.code === 'room_password_wrong' ? 'access_password_wrong' : 'err_server';
      setText(this.note, key, { s: e.retryAfter || 60 });
      this.box.dataset.kind = 'error';
      this.input.select();
    } finally {
      this.ok.disabled = false;
    }
  }
}

export class CallAccess {
  /** session: the CallSession (its ui, sig, room). */
  constructor(session) {
    this.s = session;
    this.host = false;
    this.knocks = new Map(); // knock id → its row
    this.waitText = h('p', { class: 'access-wait-text', 'data-testid': 'lobby-waiting-text', role: 'status' });
    this.waiting = h('div', { class: 'access-wait', 'data-testid': 'lobby-waiting' },
      h('div', { class: 'access-wait-box' }, h('span', { class: 'access-spinner', 'aria-hidden': 'true' }), this.waitText,
        h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'lobby-cancel', i18n: 'cancel', onclick: () => this.s.leave('left') })));
    this.waiting.hidden = true;
    this.list = h('div', { class: 'knocks', 'data-testid': 'knocks', 'aria-live': 'polite' });
    $('#call').append(this.waiting, this.list);
    this.badge = h('span', { class: 'badge knock-badge', 'data-testid': 'knock-count' });
    this.badge.hidden = true;
    session.ui.people.button.append(this.badge);
    this.open = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'room-access-open', onclick: () => this.settings() },
      icon('lock'), h('span', { i18n: 'access_settings' }));
    this.open.hidden = true;
    session.ui.people.panel.querySelector('.people-scroll').before(h('div', { class: 'access-bar' }, this.open));
  }

  welcome(f) {
    this.waiting.hidden = true;
    this.host = !!f.host;
    this.open.hidden = !this.host;
    if (!f.resumed) { for (const id of [...this.knocks.keys()]) this._drop(id); }
  }

  /** A lobby frame; true when it was one. */
  frame(f) {
    if (f.type === 'waiting') {
      this.waiting.hidden = false;
      setText(this.waitText, f.hosts_present ? 'lobby_waiting' : 'lobby_no_host', { room: this.s.room });
      return true;
    }
    if (f.type === 'knock') { this._knock(f); return true; }
    if (f.type === 'knock_ended') { this._drop(f.knock); return true; }
    return false;
  }

  _knock(f) {
    if (this.knocks.has(f.knock)) return;
    const answer = (admit) => { this.s.sig.send({ type: admit ? 'admit' : 'deny', knock: f.knock }); this._drop(f.knock); };
    const row = h('div', { class: 'knock', 'data-testid': 'knock', role: 'alert' },
      icon('users'), h('span', { class: 'knock-text', i18n: 'lobby_knock', i18nArgs: { name: f.username } }),
      h('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'knock-admit', i18n: 'lobby_admit', onclick: () => answer(true) }),
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'knock-deny', i18n: 'lobby_deny', onclick: () => answer(false) }));
    this.knocks.set(f.knock, row);
    this.list.append(row);
    this._count();
  }

  _drop(id) {
    this.knocks.get(id)?.remove();
    this.knocks.delete(id);
    this._count();
  }

  _count() {
    this.badge.textContent = String(this.knocks.size);
    this.badge.hidden = !this.knocks.size;
  }

  /** The room access dialog (hosts). */
  async settings() {
    const room = this.s.room;
    let r;
    try { r = await api.getRoom(room); } catch { toast('err_server', null, 'alert'); return; }
    const level = h('select', { class: 'input', 'data-testid': 'access-level' },
      ...['public', 'unlisted', 'private'].map((v) => h('option', { value: v, i18n: `access_${v}` })));
    level.value = r.access;
    const ask = h('input', { type: 'checkbox', 'data-testid': 'access-ask' });
    ask.checked = !!r.ask_to_join;
    const password = h('input', { type: 'password', class: 'input', 'data-testid': 'access-password', autocomplete: 'new-password', maxlength: '128' });
    setAttrText(password, 'placeholder', r.has_password ? 'access_password_new' : 'access_password_set');
    const remove = h('input', { type: 'checkbox', 'data-testid': 'access-password-remove' });
    const members = h('ul', { class: 'access-members', 'data-testid': 'access-members' });
    const name = h('input', { class: 'input', 'data-testid': 'access-member-name', autocomplete: 'off', maxlength: '32' });
    setAttrText(name, 'placeholder', 'access_member_placeholder');
    const status = h('p', { class: 'access-status', role: 'status' });
    const dlg = h('dialog', { class: 'confirm access-dialog', 'data-testid': 'access-dialog', 'aria-labelledby': 'access-title' },
      h('form', { class: 'confirm-box', method: 'dialog', onsubmit: (e) => { e.preventDefault(); save(); } },
        h('h2', { id: 'access-title', class: 'confirm-title', i18n: 'access_settings' }),
        h('label', { class: 'access-field' }, h('span', { i18n: 'access_level' }), level),
        h('label', { class: 'mod-switch' }, ask, h('span', { i18n: 'access_ask' })),
        h('label', { class: 'access-field' }, h('span', { i18n: 'access_password' }), password),
        r.has_password ? h('label', { class: 'mod-switch' }, remove, h('span', { i18n: 'access_password_remove' })) : null,
        h('h3', { class: 'access-sub', i18n: 'access_members' }),
        h('p', { class: 'muted access-hint', i18n: 'access_members_hint' }),
        members,
        h('div', { class: 'access-password-row' }, name,
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'access-member-add', i18n: 'access_member_add', onclick: () => add() })),
        status,
        h('div', { class: 'confirm-actions' },
          h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'access-close', i18n: 'close', onclick: () => dlg.close() }),
          h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'access-save', i18n: 'access_save' }))));
    dlg.addEventListener('keydown', (e) => e.stopPropagation()); // no call shortcut behind it
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    const fail = (e) => setText(status, e.code === 'user_not_found' ? 'access_no_such_user' : e.field === 'password' ? 'access_password_invalid' : 'err_server');
    const renderMembers = async () => {
      const got = await api.request(roomPath(room, '/members'));
      members.replaceChildren(...got.members.map((m) => h('li', { class: 'access-member' },
        h('span', { text: m.username }),
        h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'access-member-remove', 'aria-label': m.username,
          onclick: async () => { try { await api.request(roomPath(room, `/members/${encodeURIComponent(m.username)}`), { method: 'DELETE' }); renderMembers(); } catch (e) { fail(e); } } },
        icon('close')))));
    };
    const add = async () => {
      const who = name.value.trim();
      if (!who) return;
      try { await api.request(roomPath(room, `/members/${encodeURIComponent(who)}`), { method: 'PUT' }); name.value = ''; setText(status, 'access_member_added', { name: who }); renderMembers(); } catch (e) { fail(e); }
    };
    const save = async () => {
      const body = { access: level.value, ask_to_join: ask.checked };
      if (remove.checked) body.password = null; else if (password.value) body.password = password.value;
      try { await api.request(roomPath(room), { method: 'PATCH', body }); toast('access_saved', null, 'check'); dlg.close(); } catch (e) { fail(e); }
    };
    dlg.showModal();
    level.focus();
    renderMembers().catch(fail);
  }
}
