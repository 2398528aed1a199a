// Guest links in the web client (docs: README "Guest links", static/openapi.json "Guests").
//
// For a room's hosts: "Invite guests" at the top of the participant list opens a dialog that
// makes a link (how long it works, how many guests it admits), shows its address once with a
// Copy button, lists the room's links (uses so far, expiry) and revokes one. Revoking keeps
// newcomers out; guests already in the call stay.
//
// For a guest: the pass the landing page (guest.html / guest.js) got for this tab, kept in
// sessionStorage (never localStorage, where an account's token lives), and the "guest" badge on
// a guest's tile and row.

import { h, setText, setAttrText, toast } from './common.js';
import { formatTime } from './i18n.js';
import { icon } from './icons.js';
import * as api from './api.js';

export const GUEST_KEY = 'webcall.guest';

/** This tab's guest pass {token, room, name, id, exp (ms)}, or null (none, or expired). */
export function guestPass() {
  let pass = null;
  try { pass = JSON.parse(sessionStorage.getItem(GUEST_KEY) || 'null'); } catch { pass = null; }
  if (!pass || !pass.token || !pass.room || !(pass.exp > Date.now())) return null;
  return pass;
}

/** Keep what `POST /api/v1/guest` answered as this tab's guest pass. */
export function saveGuestPass(d) {
  const pass = { token: d.access_token, room: d.room, name: d.guest.name, id: d.guest.id,
    exp: Date.now() + d.expires_in * 1000 };
  sessionStorage.setItem(GUEST_KEY, JSON.stringify(pass));
  return pass;
}

/** The landing page saying how a guest's call ended (`left`, `kicked`, `room_deleted`, `expired`…). */
export function endAsGuest(reason, room) {
  if (reason === 'expired') sessionStorage.removeItem(GUEST_KEY);
  location.replace(`/join?ended=${encodeURIComponent(reason)}&room=${encodeURIComponent(room || '')}`);
}

/** Mark a tile as a guest's: a "guest" badge beside the name. */
export function markGuest(tile) {
  if (!tile || tile.dataset.guest === 'true') return;
  tile.dataset.guest = 'true';
  const bar = tile.querySelector('.tile-bar');
  if (bar) bar.append(h('span', { class: 'tile-guest', 'data-testid': 'guest-badge', i18n: 'guest_badge' }));
}

const EXPIRY = [[3600, 'inv_exp_hour'], [86400, 'inv_exp_day'], [7 * 86400, 'inv_exp_week'], [30 * 86400, 'inv_exp_month']];
const USES = [[1, 'inv_uses_1'], [5, 'inv_uses_n'], [20, 'inv_uses_n'], [100, 'inv_uses_n'], [0, 'inv_uses_unlimited']];

const path = (room) => `/api/v1/rooms/${encodeURIComponent(room)}/invites`;

/** One per call view: the button in the participant list and its dialog. */
class InvitePanel {
  constructor(ui) {
    this.room = null;
    this.button = h('button', { type: 'button', class: 'btn btn-small btn-ghost invite-open', 'data-testid': 'invite-guests',
      onclick: () => this.open() }, icon('link'), h('span', { i18n: 'inv_button' }));
    this.button.hidden = true;
    ui.people.panel.querySelector('.people-scroll').before(h('div', { class: 'invite-bar' }, this.button));
  }

  /** After a welcome: hosts see the button. */
  show(room, host) {
    this.room = room;
    this.button.hidden = !host;
    this.button.parentElement.hidden = !host;
    if (!host && this.dlg) this.dlg.close();
  }

  _build() {
    const select = (testid, options, label) => h('label', { class: 'field invite-field' }, h('span', { i18n: label }),
      h('select', { 'data-testid': testid }, ...options.map(([value, key]) =>
        h('option', { value: String(value), i18n: key, i18nArgs: { n: value } }))));
    this.expiry = select('invite-expiry', EXPIRY, 'inv_expiry');
    this.uses = select('invite-uses', USES, 'inv_uses');
    this.uses.querySelector('select').value = '1';
    this.expiry.querySelector('select').value = '86400';
    this.url = h('input', { class: 'invite-url', readonly: true, 'data-testid': 'invite-url' });
    setAttrText(this.url, 'aria-label', 'inv_link');
    const copy = h('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-testid': 'invite-copy',
      onclick: () => this._copy() }, icon('link'), h('span', { i18n: 'inv_copy' }));
    this.made = h('div', { class: 'invite-made', 'data-testid': 'invite-made' },
      h('div', { class: 'invite-url-row' }, this.url, copy), h('p', { class: 'field-hint', i18n: 'inv_once' }));
    this.made.hidden = true;
    this.list = h('ul', { class: 'invite-list', 'data-testid': 'invite-list' });
    this.error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'invite-error' });
    this.error.hidden = true;
    const close = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'invite-close', onclick: () => this.dlg.close() }, icon('close'));
    setAttrText(close, 'aria-label', 'dismiss');
    this.dlg = h('dialog', { class: 'invites card', 'data-testid': 'invite-dialog', 'aria-labelledby': 'invite-title' },
      h('header', { class: 'settings-head' }, h('h2', { id: 'invite-title' }, icon('link'), h('span', { i18n: 'inv_title' })), close),
      h('p', { class: 'muted invite-about', i18n: 'inv_about' }),
      h('form', { class: 'invite-form', onsubmit: (e) => { e.preventDefault(); this._create(); } },
        this.expiry, this.uses,
        h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'invite-create' }, h('span', { i18n: 'inv_create' }))),
      this.error, this.made,
      h('h3', { class: 'invite-list-title', i18n: 'inv_links' }), this.list);
    this.dlg.addEventListener('keydown', (e) => e.stopPropagation()); // no call shortcuts while typing here
    document.body.append(this.dlg);
  }

  open() {
    if (!this.dlg) this._build();
    this.made.hidden = true;
    this.error.hidden = true;
    this.dlg.showModal();
    this._load();
  }

  _fail(e) {
    this.error.hidden = false;
    setText(this.error, 'inv_error', { code: e.code || e.message });
  }

  async _create() {
    const uses = Number(this.uses.querySelector('select').value);
    const body = { expires_in: Number(this.expiry.querySelector('select').value), max_uses: uses || null };
    try {
      const made = await api.request(path(this.room), { method: 'POST', body });
      this.error.hidden = true;
      this.url.value = made.url;
      this.made.hidden = false;
      this.url.select();
      this._load();
    } catch (e) { this._fail(e); }
  }

  async _copy() {
    try { await navigator.clipboard.writeText(this.url.value); toast('link_copied', null, 'link'); } catch {
      this.url.select();
      toast('inv_copy_failed', null, 'alert');
    }
  }

  async _load() {
    try {
      const d = await api.request(path(this.room));
      this.list.replaceChildren(...d.invites.map((i) => this._item(i)));
      if (!d.invites.length) this.list.append(h('li', { class: 'muted', i18n: 'inv_none' }));
    } catch (e) { this._fail(e); }
  }

  _item(i) {
    const uses = i.max_uses == null ? h('span', { i18n: 'inv_used_unlimited', i18nArgs: { n: i.uses } })
      : h('span', { i18n: 'inv_used', i18nArgs: { n: i.uses, max: i.max_uses } });
    const when = i.state === 'active' ? h('span', { i18n: 'inv_expires', i18nArgs: { time: formatTime(new Date(i.expires_at)) } })
      : h('span', { class: 'invite-state', i18n: i.state === 'expired' ? 'inv_state_expired' : 'inv_state_used_up' });
    const revoke = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'invite-revoke',
      onclick: async () => {
        try { await api.request(`${path(this.room)}/${i.id}`, { method: 'DELETE' }); toast('inv_revoked', null, 'link'); this._load(); } catch (e) { this._fail(e); }
      } }, h('span', { i18n: 'inv_revoke' }));
    return h('li', { class: 'invite-item', 'data-testid': 'invite-item', dataset: { state: i.state } },
      h('span', { class: 'invite-info' }, uses, ' · ', when), revoke);
  }
}

const panels = new WeakMap();

/** The call view's invite panel (made once per CallUI). */
export function invitesFor(ui) {
  if (!panels.has(ui)) panels.set(ui, new InvitePanel(ui));
  return panels.get(ui);
}
