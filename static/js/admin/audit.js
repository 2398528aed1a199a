// The Audit log tab: every admin action, newest first (who, what, on what, when), paged.

import { h } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { PagedList } from './table.js';
import * as admin from './api.js';
import { when } from './format.js';

/** `user.ban` → the i18n key `adm_action_user_ban`, when there is one. */
function actionLabel(action) {
  const key = `adm_action_${String(action).replace(/[^a-z0-9]+/gi, '_')}`;
  const text = t(key);
  return text === key ? null : text;
}

export class AuditTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.list = new PagedList({
      testid: 'audit', ctx, caption: 'adm_tab_audit',
      columns: [
        { key: 'at', label: 'adm_col_when' },
        { key: 'actor', label: 'adm_col_who' },
        { key: 'action', label: 'adm_col_action', cls: 'adm-col-main' },
        { key: 'target', label: 'adm_col_target' },
        { key: 'detail', label: 'adm_col_detail' },
      ],
      rowKey: (e) => String(e.id),
      row: (e) => this._row(e),
      fetchPage: async (cursor, signal) => {
        const d = await admin.audit({ cursor }, signal);
        return { items: d.entries || [], next: d.next_cursor };
      },
      emptyKey: 'adm_audit_empty',
    });
    const refresh = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'audit-refresh', onclick: () => this.list.reload() },
      icon('refresh'), h('span', { i18n: 'refresh' }));
    this.el = h('div', { class: 'adm-tab-body' }, h('div', { class: 'adm-toolbar adm-toolbar-end' }, refresh), this.list.el);
  }

  show() { this.list.reload(); }
  hide() {}
  relabel() { this.list.relabel(); }

  _row(e) {
    const label = actionLabel(e.action);
    return {
      attrs: { 'data-testid': 'audit-row', dataset: { action: e.action, target: e.target ?? '' } },
      cells: {
        at: h('span', { class: 'adm-small adm-nowrap', text: when(e.at) }),
        actor: h('span', { class: 'adm-strong adm-ellipsis', text: e.actor?.username || e.actor?.id || '—' }),
        action: h('span', { class: 'adm-action', title: e.action },
          label ? h('span', { text: label }) : null,
          h('code', { class: 'adm-mono adm-small muted', text: e.action })),
        target: h('span', { class: 'adm-ellipsis adm-mono adm-small', text: e.target ?? '', title: e.target ?? '' }),
        detail: h('span', { class: 'adm-small muted adm-wrap', text: e.detail ?? '' }),
      },
    };
  }
}
