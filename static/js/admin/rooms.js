// The Rooms tab: every room with its owner, age, lock and how many are in its call now;
// end the call (everyone is disconnected, the room stays), lock / unlock (newcomers are
// refused, those inside stay), give it another owner, delete it.

import { h } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { confirmDialog } from '../dialog.js';
import * as admin from './api.js';
import { PagedList, actionButton } from './table.js';
import { askOwner } from './dialogs.js';
import { day, when } from './format.js';

export class RoomsTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.list = new PagedList({
      testid: 'rooms', ctx, caption: 'adm_tab_rooms',
      columns: [
        { key: 'room', label: 'adm_col_room', cls: 'adm-col-main' },
        { key: 'owner', label: 'adm_col_owner' },
        { key: 'people', label: 'adm_col_people' },
        { key: 'created', label: 'adm_col_created' },
        { key: 'actions', label: '', cls: 'adm-col-actions' },
      ],
      rowKey: (r) => r.name,
      row: (r) => this._row(r),
      fetchPage: async (cursor, signal) => {
        const d = await admin.rooms({ cursor }, signal);
        return { items: d.rooms || [], next: d.next_cursor };
      },
      emptyKey: 'adm_rooms_empty',
    });
    const refresh = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'rooms-refresh', onclick: () => this.list.reload() },
      icon('refresh'), h('span', { i18n: 'refresh' }));
    this.el = h('div', { class: 'adm-tab-body' }, h('div', { class: 'adm-toolbar adm-toolbar-end' }, refresh), this.list.el);
    this.loaded = false;
  }

  show() { this.loaded = true; this.list.reload(); }
  hide() {}
  relabel() { this.list.relabel(); }

  _row(r) {
    const name = h('div', { class: 'adm-room' },
      h('a', { class: 'adm-strong adm-ellipsis', href: `/r/${encodeURIComponent(r.name)}`, 'data-testid': 'room-link', text: r.name, title: r.name }),
      r.locked ? h('span', { class: 'adm-badge adm-badge-locked', 'data-testid': 'room-locked' }, icon('lock'), t('adm_locked')) : null);
    const people = h('span', { class: `adm-count ${r.participants ? 'adm-count-live' : ''}`, 'data-testid': 'room-participants' },
      icon('users'), String(r.participants || 0));
    const actions = h('div', { class: 'adm-actions' },
      actionButton({ testid: 'room-end', key: 'adm_end_call', ic: 'leave', onclick: () => this._end(r), danger: true, disabled: !r.participants }),
      actionButton({ testid: 'room-lock', key: r.locked ? 'adm_unlock' : 'adm_lock', ic: 'lock', onclick: () => this._lock(r) }),
      actionButton({ testid: 'room-owner', key: 'adm_change_owner', ic: 'crown', onclick: () => this._owner(r) }),
      actionButton({ testid: 'room-delete', key: 'adm_delete', ic: 'trash', onclick: () => this._delete(r), danger: true, compact: true }));
    return {
      attrs: { 'data-testid': 'room-row', dataset: { room: r.name, locked: String(!!r.locked), participants: String(r.participants || 0) } },
      cells: {
        room: name,
        owner: h('span', { class: 'adm-ellipsis', 'data-testid': 'room-owner-name', text: r.owner?.username || '—' }),
        people,
        created: h('span', { class: 'adm-small adm-nowrap', text: day(r.created_at), title: when(r.created_at) }),
        actions,
      },
    };
  }

  async _end(r) {
    if (!(await confirmDialog({ title: 'adm_end_title', body: 'adm_end_body', ok: 'adm_end_call', args: { room: r.name, n: r.participants }, danger: true }))) return;
    await this.ctx.act(() => admin.endRoom(r.name), 'adm_ended_ok', { room: r.name }, () => this.list.update(r.name, { participants: 0 }));
  }

  async _lock(r) {
    const locked = !r.locked;
    if (locked && !(await confirmDialog({ title: 'adm_lock_title', body: 'adm_lock_body', ok: 'adm_lock', args: { room: r.name } }))) return;
    await this.ctx.act(() => admin.lockRoom(r.name, locked), locked ? 'adm_locked_ok' : 'adm_unlocked_ok', { room: r.name },
      () => this.list.update(r.name, { locked }));
  }

  async _owner(r) {
    const user = await askOwner(r.name, r.owner?.username, async (name) => {
      const d = await admin.users({ q: name, limit: 200 });
      return (d.users || []).find((u) => u.username.toLowerCase() === name.toLowerCase()) || null;
    });
    if (!user) return;
    await this.ctx.act(() => admin.setOwner(r.name, user.id), 'adm_owner_ok_toast', { room: r.name, name: user.username },
      () => this.list.update(r.name, { owner: { id: user.id, username: user.username } }));
  }

  async _delete(r) {
    if (!(await confirmDialog({ title: 'adm_delete_room_title', body: 'adm_delete_room_body', ok: 'adm_delete', args: { room: r.name }, danger: true }))) return;
    await this.ctx.act(() => admin.deleteRoom(r.name), 'adm_deleted_room_ok', { room: r.name }, () => this.list.remove(r.name));
  }
}
