// The Keys tab: the TURN secret and the JWT signing key, each with its generation, when it
// was last rotated and until when the previous one still verifies; Rotate (after a
// confirmation saying what happens) makes a new one the signing key, no restart. No secret
// is ever shown or sent here.

import { h } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { confirmDialog } from '../dialog.js';
import * as admin from './api.js';
import { emptyState } from './table.js';
import { count, when } from './format.js';

const KINDS = ['turn', 'jwt'];

export class KeysTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.cards = h('div', { class: 'adm-keys' });
    this.error = emptyState('keys-error', 'alert');
    this.unavailable = emptyState('keys-unavailable', 'info');
    this.el = h('div', { class: 'adm-tab-body' }, this.unavailable.el, this.cards, this.error.el);
  }

  show() { this._load(); }
  hide() {}
  relabel() { this.render(); }

  async _load() {
    try {
      this.data = await admin.keys();
      this.error.hide();
      this.unavailable.hide();
      this.render();
    } catch (e) {
      if (e.status === 404) { this.cards.replaceChildren(); this.unavailable.show('adm_keys_unavailable'); return; }
      this.error.show('adm_err_load', { message: e.message || e.code });
      this.ctx.fail(e, { quiet: true });
    }
  }

  render() {
    if (!this.data) return;
    this.cards.replaceChildren(...KINDS.filter((k) => this.data[k]).map((k) => this._card(k, this.data[k])));
  }

  _card(kind, key) {
    const row = (label, value, testid) => h('div', {}, h('dt', { text: t(label) }), h('dd', { 'data-testid': testid, text: value }));
    // `rotates: false`: an external TURN server holds this secret; it changes there.
    const rotates = key.rotates !== false;
    const rotate = rotates
      ? h('button', { type: 'button', class: 'btn btn-ghost adm-act-danger', 'data-testid': 'key-rotate', onclick: () => this._rotate(kind) },
        icon('refresh'), h('span', { text: t('adm_rotate') }))
      : h('p', { class: 'muted adm-small', 'data-testid': 'key-external', text: t('adm_key_external') });
    const previous = key.previous_valid_until && new Date(key.previous_valid_until) > new Date()
      ? t('adm_key_previous_until', { time: when(key.previous_valid_until) }) : t('adm_key_previous_none');
    return h('section', { class: 'card adm-section adm-key', 'data-testid': `key-${kind}`, dataset: { generation: String(key.generation ?? ''), rotates: String(rotates) }, 'aria-labelledby': `key-${kind}-title` },
      h('div', { class: 'adm-section-head' },
        h('h2', { id: `key-${kind}-title` }, icon(kind === 'turn' ? 'globe' : 'lock'), h('span', { text: t(`adm_key_${kind}`) }))),
      h('p', { class: 'muted adm-small', text: t(`adm_key_${kind}_sub`) }),
      h('dl', { class: 'adm-stats' },
        row('adm_key_generation', count(key.generation ?? 0), 'key-generation'),
        row('adm_key_rotated', key.rotated_at ? when(key.rotated_at) : t('adm_key_never'), 'key-rotated'),
        row('adm_key_previous', previous, 'key-previous')),
      rotate);
  }

  async _rotate(kind) {
    if (!(await confirmDialog({ title: `adm_rotate_${kind}_title`, body: `adm_rotate_${kind}_body`, ok: 'adm_rotate', danger: true }))) return;
    await this.ctx.act(async () => {
      const next = await admin.rotateKey(kind);
      this.data = { ...this.data, [kind]: next };
      this.render();
    }, 'adm_rotated_ok', { name: `@adm_key_${kind}` });
  }
}
