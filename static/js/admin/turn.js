// The TURN tab: this instance's live relay allocations (who, transport, addresses, age,
// bytes and packets each way, the current rate), refreshed every few seconds, each one
// endable; and the allocation quotas per user and in total, editable while running.

import { h } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { confirmDialog } from '../dialog.js';
import * as admin from './api.js';
import { Table, actionButton, emptyState } from './table.js';
import { Poller } from './poller.js';
import { age, bitrate, bytes, clock, count } from './format.js';

const REFRESH_MS = 3000;
const QUOTA_MAX = 65535; // the server's bound (more than the relay has ports)

export class TurnTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.updated = null;
    this.table = new Table({
      testid: 'turn-list', caption: 'adm_turn_allocations',
      columns: [
        { key: 'user', label: 'adm_col_user', cls: 'adm-col-main' },
        { key: 'transport', label: 'adm_col_transport' },
        { key: 'addrs', label: 'adm_col_addresses' },
        { key: 'age', label: 'adm_col_age' },
        { key: 'in', label: 'adm_col_in' },
        { key: 'out', label: 'adm_col_out' },
        { key: 'actions', label: '', cls: 'adm-col-actions' },
      ],
      rowKey: (a) => String(a.id),
      row: (a) => this._row(a),
    });
    this.totals = h('dl', { class: 'adm-stats', 'data-testid': 'turn-totals' });
    this.stamp = h('span', { class: 'muted adm-small adm-live', 'data-testid': 'turn-updated' });
    this.instance = h('span', { class: 'adm-summary', 'data-testid': 'turn-instance' });
    this.empty = emptyState('turn-empty', 'globe');
    this.error = emptyState('turn-error', 'alert');
    this.unavailable = emptyState('turn-unavailable', 'info');
    this.quotaForm = this._quotaForm();
    this.liveBox = h('section', { class: 'card adm-section', 'aria-labelledby': 'turn-alloc-title' },
      h('div', { class: 'adm-section-head' },
        h('h2', { id: 'turn-alloc-title', i18n: 'adm_turn_allocations' }), this.instance, this.stamp),
      this.totals, this.table.el, this.empty.el, this.error.el);
    this.el = h('div', { class: 'adm-tab-body' }, this.unavailable.el, this.liveBox, this.quotaForm.el);
    this.poller = new Poller((signal) => this._load(signal), REFRESH_MS);
  }

  show() { this.poller.start(); this._loadQuotas(); }
  hide() { this.poller.stop(); }
  relabel() { this.table.relabel(); this.render(); }

  async _load(signal) {
    try {
      this.data = await admin.allocations(signal);
      this.updated = new Date();
      this.error.hide();
      this.unavailable.hide();
      this.liveBox.hidden = false;
      this.render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404) { this._unavailable(); return; }
      this.error.show('adm_err_load', { message: e.message || e.code });
      this.ctx.fail(e, { quiet: true });
    }
  }

  _unavailable() {
    this.poller.stop();
    this.liveBox.hidden = true;
    this.quotaForm.el.hidden = true;
    this.unavailable.show('adm_turn_unavailable');
  }

  render() {
    if (!this.data) return;
    const list = this.data.allocations || [];
    const sum = (k) => list.reduce((n, a) => n + (Number(a[k]) || 0), 0);
    const tot = { allocations: list.length, bytes_in: sum('bytes_in'), bytes_out: sum('bytes_out'),
      rate_in_bps: sum('rate_in_bps'), rate_out_bps: sum('rate_out_bps'), ...(this.data.totals || {}) };
    const stat = (key, value, testid) => [h('dt', { text: t(key) }), h('dd', { 'data-testid': testid, text: value })];
    this.totals.replaceChildren(
      h('div', {}, ...stat('adm_turn_total_allocations', count(tot.allocations), 'turn-total-allocations')),
      tot.users === undefined ? null : h('div', {}, ...stat('adm_turn_total_users', count(tot.users), 'turn-total-users')),
      h('div', {}, ...stat('adm_turn_total_in', `${bytes(tot.bytes_in)} · ${bitrate(tot.rate_in_bps)}`, 'turn-total-in')),
      h('div', {}, ...stat('adm_turn_total_out', `${bytes(tot.bytes_out)} · ${bitrate(tot.rate_out_bps)}`, 'turn-total-out')));
    this.instance.textContent = this.data.instance ? t('adm_turn_instance', { name: this.data.instance }) : '';
    this.stamp.textContent = t('adm_updated_at', { time: clock(this.updated) });
    this.table.set(list);
    this.table.el.hidden = list.length === 0;
    if (list.length === 0) this.empty.show('adm_turn_empty'); else this.empty.hide();
  }

  _row(a) {
    const dir = (b, p, r) => h('div', { class: 'adm-dir' },
      h('span', { class: 'adm-strong', text: bytes(b) }),
      h('span', { class: 'muted adm-small', text: `${t('adm_packets', { n: count(p) })} · ${bitrate(r)}` }));
    const end = actionButton({ testid: 'turn-end', key: 'adm_end', ic: 'close', onclick: () => this._end(a), danger: true });
    return {
      attrs: { 'data-testid': 'turn-row', dataset: { id: String(a.id), userId: a.user_id || '', username: a.username || '', transport: a.transport || '' } },
      cells: {
        user: h('span', { class: 'adm-strong adm-ellipsis', 'data-testid': 'turn-user', text: a.username || a.user_id || t('adm_unknown_user'), title: a.user_id || '' }),
        transport: h('span', { class: 'adm-badge adm-badge-member', 'data-testid': 'turn-transport', text: String(a.transport || '?').toUpperCase() }),
        addrs: h('div', { class: 'adm-dir adm-mono adm-small' },
          h('span', { title: t('adm_turn_client'), text: `${t('adm_turn_client')}: ${a.client || '?'}` }),
          h('span', { class: 'muted', title: t('adm_turn_relayed'), text: `${t('adm_turn_relayed')}: ${a.relayed || '?'}` })),
        age: h('span', { class: 'adm-nowrap', 'data-testid': 'turn-age', text: age(a.age_secs) }),
        in: dir(a.bytes_in, a.packets_in, a.rate_in_bps),
        out: dir(a.bytes_out, a.packets_out, a.rate_out_bps),
        actions: h('div', { class: 'adm-actions' }, end),
      },
    };
  }

  async _end(a) {
    const name = a.username || a.user_id || t('adm_unknown_user');
    if (!(await confirmDialog({ title: 'adm_turn_end_title', body: 'adm_turn_end_body', ok: 'adm_end', args: { name, transport: String(a.transport || '').toUpperCase() }, danger: true }))) return;
    await this.ctx.act(() => admin.endAllocation(a.id), 'adm_turn_ended_ok', { name }, () => this.poller.tick());
  }

  // ---- quotas ----
  _quotaForm() {
    const field = (id, key, hint) => {
      const input = h('input', { id, 'data-testid': id, type: 'number', min: '1', max: String(QUOTA_MAX), step: '1', inputmode: 'numeric', required: true, 'aria-describedby': `${id}-hint` });
      return { input, el: h('div', { class: 'field' }, h('label', { for: id, i18n: key }), input, h('p', { class: 'field-hint', id: `${id}-hint`, i18n: hint })) };
    };
    const perUser = field('turn-quota-user', 'adm_quota_user', 'adm_quota_user_hint');
    const total = field('turn-quota-total', 'adm_quota_total', 'adm_quota_total_hint');
    const err = h('p', { class: 'field-error', 'data-testid': 'turn-quota-error', role: 'alert', hidden: true });
    const save = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'turn-quota-save' }, icon('check'), h('span', { i18n: 'adm_save' }));
    const form = h('form', { class: 'card adm-section adm-quotas', novalidate: true, 'aria-labelledby': 'turn-quota-title' },
      h('div', { class: 'adm-section-head' }, h('h2', { id: 'turn-quota-title', i18n: 'adm_quotas' })),
      h('p', { class: 'muted adm-small', i18n: 'adm_quotas_sub' }),
      h('div', { class: 'adm-quota-fields' }, perUser.el, total.el), err, save);
    form.addEventListener('input', () => { err.hidden = true; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { per_user: Number(perUser.input.value), total: Number(total.input.value) };
      const bad = [perUser.input, total.input].find((i) => !/^\d+$/.test(i.value.trim()) || Number(i.value) < 1 || Number(i.value) > QUOTA_MAX);
      if (bad) { err.textContent = t('adm_quota_invalid'); err.hidden = false; bad.focus(); return; }
      save.disabled = true;
      try {
        await this.ctx.act(() => admin.setQuotas(body), 'adm_quotas_saved', body, null, (ex) => {
          err.textContent = t('adm_err_action', { message: ex.message || ex.code }); err.hidden = false;
        });
      } finally { save.disabled = false; }
    });
    return { el: form, perUser: perUser.input, total: total.input };
  }

  async _loadQuotas() {
    try {
      const q = await admin.quotas();
      this.quotaForm.perUser.value = String(q.per_user ?? '');
      this.quotaForm.total.value = String(q.total ?? '');
      this.quotaForm.el.hidden = false;
    } catch (e) {
      if (e.status === 404) { this.quotaForm.el.hidden = true; return; }
      this.ctx.fail(e);
    }
  }
}
