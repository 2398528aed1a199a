// The panel's lists: a table on a wide screen, a stack of cards on a phone (the same
// <table>, restyled by admin.css; each cell carries its column's name for the card), rows
// keyed so a refresh keeps the focus, empty / loading / error states, and "Load more" for
// the API's cursor paging.

import { h } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

/**
 * A keyed table. columns: [{key, label (i18n key), cls}]; rowKey(item) → string;
 * row(item) → {cells: {columnKey: Node | string}, attrs: {…tr attributes}}.
 */
export class Table {
  constructor({ testid, columns, rowKey, row, caption }) {
    this.columns = columns;
    this.rowKey = rowKey;
    this.row = row;
    this.body = h('tbody', { 'data-testid': testid });
    this.head = h('thead');
    this.caption = caption;
    this.el = h('div', { class: 'adm-table-wrap' },
      h('table', { class: 'adm-table' }, caption ? h('caption', { class: 'sr-only', i18n: caption }) : null, this.head, this.body));
    this.relabel();
  }

  /** Column titles (again, after a language switch). */
  relabel() {
    this.head.replaceChildren(h('tr', {}, this.columns.map((c) => h('th', { scope: 'col', class: c.cls, text: c.label ? t(c.label) : '' }))));
  }

  /** Show exactly `items`, in order. A row whose element had the focus gets it back. */
  set(items) {
    const active = document.activeElement;
    const focusedRow = active && this.body.contains(active) ? active.closest('tr') : null;
    const focusKey = focusedRow?.dataset.key;
    const focusId = active?.dataset?.testid;
    this.body.replaceChildren(...items.map((item) => this._tr(item)));
    if (focusKey && focusId) {
      const tr = [...this.body.children].find((r) => r.dataset.key === focusKey);
      tr?.querySelector(`[data-testid="${focusId}"]`)?.focus();
    }
  }

  _tr(item) {
    const { cells, attrs = {} } = this.row(item);
    const tr = h('tr', { ...attrs, dataset: { ...(attrs.dataset || {}), key: this.rowKey(item) } });
    for (const c of this.columns) {
      const content = cells[c.key];
      tr.append(h('td', { class: c.cls },
        c.label ? h('span', { class: 'adm-cell-label', 'aria-hidden': 'true', text: t(c.label) }) : null,
        h('div', { class: 'adm-cell' }, content ?? '')));
    }
    return tr;
  }
}

/**
 * A row's action button. `compact`: only the icon on a wide screen (named by aria-label and a
 * tooltip), with its words back on a phone's card.
 */
export function actionButton({ testid, key, ic, onclick, danger = false, disabled = false, compact = false }) {
  const label = t(key);
  return h('button', {
    type: 'button', class: `btn btn-small btn-ghost adm-act${danger ? ' adm-act-danger' : ''}${compact ? ' adm-act-compact' : ''}`,
    'data-testid': testid, onclick, disabled, title: compact ? label : null, 'aria-label': compact ? label : null,
  }, icon(ic), h('span', { class: 'adm-act-label', text: label }));
}

/** An "empty" or "error" block: an icon and a line (i18n key with args). */
export function emptyState(testid, ic = 'info') {
  const text = h('p', {});
  const el = h('div', { class: 'empty adm-empty', 'data-testid': testid, hidden: true },
    h('span', { class: 'empty-icon' }, icon(ic)), text);
  return {
    el,
    show(key, args) { text.textContent = t(key, args); el.hidden = false; },
    hide() { el.hidden = true; },
  };
}

/**
 * A cursor-paged list: fetchPage(cursor, signal) → {items, next}. reload() starts again at
 * the first page (a new search), more() appends the next; update/remove change one row in place
 * after an action succeeded. ctx.fail(e) handles errors (toasts, sign-in, "admins only").
 */
export class PagedList {
  constructor({ testid, columns, rowKey, row, fetchPage, emptyKey, emptyArgs, ctx, caption }) {
    this.table = new Table({ testid: `${testid}-list`, columns, rowKey, row, caption });
    this.fetchPage = fetchPage;
    this.emptyKey = emptyKey;
    this.emptyArgs = emptyArgs || (() => ({}));
    this.ctx = ctx;
    this.rowKey = rowKey;
    this.items = [];
    this.next = null;
    this.abort = null;
    this.empty = emptyState(`${testid}-empty`);
    this.error = emptyState(`${testid}-error`, 'alert');
    this.spinner = h('div', { class: 'adm-loading', hidden: true }, h('span', { class: 'spinner spinner-sm' }));
    this.moreBtn = h('button', { type: 'button', class: 'btn btn-ghost adm-more', 'data-testid': `${testid}-more`, hidden: true, onclick: () => this.more() },
      h('span', { i18n: 'adm_load_more' }));
    this.el = h('div', { class: 'adm-list', 'data-testid': testid, 'aria-busy': 'false' },
      this.table.el, this.empty.el, this.error.el, this.spinner, this.moreBtn);
  }

  async reload() {
    this.items = [];
    this.next = null;
    await this._load(null, true);
  }

  async more() {
    if (this.next) await this._load(this.next, false);
  }

  async _load(cursor, fresh) {
    this.abort?.abort();
    const ctl = this.abort = new AbortController();
    this.el.setAttribute('aria-busy', 'true');
    this.spinner.hidden = false;
    this.moreBtn.disabled = true;
    this.error.hide();
    try {
      const page = await this.fetchPage(cursor, ctl.signal);
      if (ctl !== this.abort) return;
      this.items = fresh ? page.items : this.items.concat(page.items);
      this.next = page.next || null;
      this.render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (fresh) { this.items = []; this.render(); this.empty.hide(); }
      this.error.show('adm_err_load', { message: e.message || e.code });
      this.ctx.fail(e, { quiet: true });
    } finally {
      if (ctl === this.abort) {
        this.el.setAttribute('aria-busy', 'false');
        this.spinner.hidden = true;
        this.moreBtn.disabled = false;
      }
    }
  }

  render() {
    this.table.set(this.items);
    this.table.el.hidden = this.items.length === 0;
    if (this.items.length === 0) this.empty.show(this.emptyKey, this.emptyArgs()); else this.empty.hide();
    this.moreBtn.hidden = !this.next;
  }

  /** After a language switch: titles, labels, numbers and dates again. */
  relabel() {
    this.table.relabel();
    if (!this.error.el.hidden) return;
    this.render();
  }

  /** Change one item (by key) and redraw its row. */
  update(key, patch) {
    this.items = this.items.map((it) => (this.rowKey(it) === key ? { ...it, ...patch } : it));
    this.render();
  }

  remove(key) {
    this.items = this.items.filter((it) => this.rowKey(it) !== key);
    this.render();
  }
}
