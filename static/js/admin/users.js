// The Users tab: search by username or e-mail, page through, and per person ban / unban,
// make or stop being an admin, a one-time password-reset link, delete. Destructive actions
// ask first; the row changes in place once the server said yes.

import { h, initials, hueOf } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { confirmDialog } from '../dialog.js';
import * as admin from './api.js';
import { PagedList, actionButton } from './table.js';
import { showResetLink } from './dialogs.js';
import { day, when } from './format.js';

const SEARCH_DELAY_MS = 250;

export class UsersTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.q = '';
    this.search = h('input', {
      type: 'search', class: 'adm-search-input', id: 'users-search', 'data-testid': 'users-search',
      autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', enterkeyhint: 'search',
      'data-i18n-placeholder': 'adm_users_search', 'data-i18n-aria-label': 'adm_users_search',
    });
    let timer = 0;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this._query(), SEARCH_DELAY_MS);
    });
    this.search.addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(timer); this._query(); } });
    this.list = new PagedList({
      testid: 'users', ctx, caption: 'adm_tab_users',
      columns: [
        { key: 'user', label: 'adm_col_user', cls: 'adm-col-main' },
        { key: 'role', label: 'adm_col_role' },
        { key: 'status', label: 'adm_col_status' },
        { key: 'created', label: 'adm_col_created' },
        { key: 'actions', label: '', cls: 'adm-col-actions' },
      ],
      rowKey: (u) => u.id,
      row: (u) => this._row(u),
      fetchPage: async (cursor, signal) => {
        const d = await admin.users({ q: this.q, cursor }, signal);
        return { items: d.users || [], next: d.next_cursor };
      },
      emptyKey: 'adm_users_none',
      emptyArgs: () => ({ q: this.q }),
    });
    this.el = h('div', { class: 'adm-tab-body' },
      h('div', { class: 'adm-toolbar' },
        h('div', { class: 'adm-search' }, this.search)),
      this.list.el);
    this.loaded = false;
  }

  show() { if (!this.loaded) { this.loaded = true; this.list.reload(); } }
  hide() {}
  relabel() { this.list.relabel(); }

  _query() {
    const q = this.search.value.trim();
    if (q === this.q && this.loaded) return;
    this.q = q;
    this.list.emptyKey = q ? 'adm_users_empty' : 'adm_users_none';
    this.list.reload();
  }

  _row(u) {
    const me = this.ctx.me;
    const self = u.id === me.id;
    const avatar = h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(u.username) });
    avatar.style.setProperty('--hue', hueOf(u.username));
    const who = h('div', { class: 'adm-user' }, avatar,
      h('div', { class: 'adm-user-text' },
        h('span', { class: 'adm-strong adm-ellipsis', 'data-testid': 'user-name', text: u.username, title: u.username },
          self ? h('span', { class: 'adm-you', text: ` · ${t('adm_you')}` }) : null),
        h('span', { class: 'muted adm-ellipsis adm-small', 'data-testid': 'user-email', text: u.email, title: u.email })));
    const role = h('span', { class: `adm-badge adm-badge-${u.role === 'admin' ? 'admin' : 'member'}`, 'data-testid': 'user-role', dataset: { role: u.role } },
      u.role === 'admin' ? icon('crown') : null, t(u.role === 'admin' ? 'adm_role_admin' : 'adm_role_member'));
    const state = u.banned ? 'banned' : u.online ? 'online' : 'offline';
    const status = h('span', { class: `adm-status adm-status-${state}`, 'data-testid': 'user-status', dataset: { status: state },
      title: u.banned && u.banned_at ? t('adm_banned_since', { time: when(u.banned_at) }) : null },
    h('span', { class: 'adm-dot', 'aria-hidden': 'true' }), t(`adm_status_${state}`));
    const actions = h('div', { class: 'adm-actions' });
    if (!self) {
      actions.append(u.banned
        ? actionButton({ testid: 'user-unban', key: 'adm_unban', ic: 'check', onclick: () => this._unban(u) })
        : actionButton({ testid: 'user-ban', key: 'adm_ban', ic: 'kick', onclick: () => this._ban(u), danger: true }));
    }
    actions.append(
      actionButton({ testid: 'user-reset', key: 'adm_reset', ic: 'link', onclick: () => this._reset(u) }),
      actionButton({ testid: 'user-set-role', key: u.role === 'admin' ? 'adm_revoke_admin' : 'adm_make_admin', ic: 'crown', onclick: () => this._role(u) }),
      actionButton({ testid: 'user-delete', key: 'adm_delete', ic: 'trash', onclick: () => this._delete(u), danger: true, compact: true }));
    return {
      attrs: { 'data-testid': 'user-row', dataset: { userId: u.id, username: u.username, role: u.role, banned: String(!!u.banned), online: String(!!u.online) } },
      cells: { user: who, role, status, created: h('span', { class: 'adm-small adm-nowrap', text: day(u.created_at), title: when(u.created_at) }), actions },
    };
  }

  async _ban(u) {
    if (!(await confirmDialog({ title: 'adm_ban_title', body: 'adm_ban_body', ok: 'adm_ban', args: { name: u.username }, danger: true }))) return;
    await this.ctx.act(() => admin.ban(u.id), 'adm_banned_ok', { name: u.username },
      () => this.list.update(u.id, { banned: true, banned_at: new Date().toISOString(), online: false }));
  }

  async _unban(u) {
    await this.ctx.act(() => admin.unban(u.id), 'adm_unbanned_ok', { name: u.username },
      () => this.list.update(u.id, { banned: false, banned_at: null }));
  }

  async _role(u) {
    const role = u.role === 'admin' ? 'member' : 'admin';
    const key = role === 'admin' ? 'adm_make_admin' : 'adm_revoke_admin';
    if (!(await confirmDialog({ title: `${key}_title`, body: `${key}_body`, ok: key, args: { name: u.username }, danger: role === 'member' }))) return;
    const self = u.id === this.ctx.me.id;
    await this.ctx.act(() => admin.setRole(u.id, role), role === 'admin' ? 'adm_made_admin_ok' : 'adm_revoked_admin_ok', { name: u.username }, () => {
      this.list.update(u.id, { role });
      if (self) this.ctx.lostAdmin();
    });
  }

  async _delete(u) {
    if (!(await confirmDialog({ title: 'adm_delete_user_title', body: 'adm_delete_user_body', ok: 'adm_delete', args: { name: u.username }, danger: true }))) return;
    await this.ctx.act(() => admin.deleteUser(u.id), 'adm_deleted_user_ok', { name: u.username }, () => this.list.remove(u.id));
  }

  async _reset(u) {
    if (!(await confirmDialog({ title: 'adm_reset_confirm_title', body: 'adm_reset_confirm_body', ok: 'adm_reset_confirm_ok', args: { name: u.username } }))) return;
    let link = null;
    await this.ctx.act(async () => { link = await admin.resetLink(u.id); }, null, null);
    if (link && link.url) await showResetLink(u.username, link, when);
  }
}
