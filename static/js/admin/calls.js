// The Live calls tab: who is in which room right now, on every instance (presence), with
// their microphone, camera and screen; refreshed every few seconds; end a call from here.

import { h, initials, hueOf } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { confirmDialog } from '../dialog.js';
import * as admin from './api.js';
import { actionButton, emptyState } from './table.js';
import { Poller } from './poller.js';
import { clock } from './format.js';

const REFRESH_MS = 3000;

export class CallsTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.rooms = null;
    this.updated = null;
    this.listEl = h('ul', { class: 'adm-calls', 'data-testid': 'calls-list' });
    this.empty = emptyState('calls-empty', 'users');
    this.error = emptyState('calls-error', 'alert');
    this.stamp = h('span', { class: 'muted adm-small adm-live', 'data-testid': 'calls-updated', 'aria-live': 'off' });
    this.summary = h('span', { class: 'adm-summary', 'data-testid': 'calls-summary' });
    this.el = h('div', { class: 'adm-tab-body' },
      h('div', { class: 'adm-toolbar' }, this.summary, this.stamp),
      this.listEl, this.empty.el, this.error.el);
    this.poller = new Poller((signal) => this._load(signal), REFRESH_MS);
  }

  show() { this.poller.start(); }
  hide() { this.poller.stop(); }
  relabel() { this.render(); }

  async _load(signal) {
    try {
      const d = await admin.calls(signal);
      this.rooms = (d.rooms || []).filter((r) => (r.participants || []).length > 0);
      this.updated = new Date();
      this.error.hide();
      this.render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.error.show('adm_err_load', { message: e.message || e.code });
      this.ctx.fail(e, { quiet: true });
    }
  }

  render() {
    if (!this.rooms) return;
    const people = this.rooms.reduce((n, r) => n + r.participants.length, 0);
    this.summary.textContent = t('adm_calls_summary', { rooms: this.rooms.length, people });
    this.stamp.textContent = this.updated ? t('adm_updated_at', { time: clock(this.updated) }) : '';
    if (this.rooms.length === 0) this.empty.show('adm_calls_empty'); else this.empty.hide();
    const focusRoom = document.activeElement?.closest?.('[data-testid=call-room]')?.dataset.room;
    this.listEl.replaceChildren(...this.rooms.map((r) => this._room(r)));
    if (focusRoom) this.listEl.querySelector(`[data-testid=call-room][data-room="${CSS.escape(focusRoom)}"] [data-testid=call-end]`)?.focus();
  }

  _room(r) {
    const end = actionButton({ testid: 'call-end', key: 'adm_end_call', ic: 'leave', onclick: () => this._end(r), danger: true });
    return h('li', { class: 'adm-call card', 'data-testid': 'call-room', dataset: { room: r.name } },
      h('div', { class: 'adm-call-head' },
        h('a', { class: 'adm-strong adm-ellipsis', href: `/r/${encodeURIComponent(r.name)}`, text: r.name, title: r.name }),
        h('span', { class: 'adm-count adm-count-live' }, icon('users'), String(r.participants.length)),
        end),
      h('ul', { class: 'adm-people' }, r.participants.map((p) => this._person(p))));
  }

  _person(p) {
    const avatar = h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(p.username) });
    avatar.style.setProperty('--hue', hueOf(p.username));
    const flag = (on, onIcon, offIcon, key) => h('span', { class: `adm-flag ${on ? 'on' : 'off'}`, title: t(key + (on ? '_on' : '_off')), 'aria-label': t(key + (on ? '_on' : '_off')), role: 'img' }, icon(on ? onIcon : offIcon));
    return h('li', { class: 'adm-person', 'data-testid': 'call-person', dataset: { username: p.username || '', userId: p.user_id || '', peerId: p.peer_id || '' } },
      avatar, h('span', { class: 'adm-ellipsis', text: p.username || '?' }),
      h('span', { class: 'adm-flags' },
        flag(!!p.mic, 'mic', 'micOff', 'adm_mic'),
        flag(!!p.cam, 'cam', 'camOff', 'adm_cam'),
        p.screen ? h('span', { class: 'adm-flag on', title: t('adm_screen_on'), 'aria-label': t('adm_screen_on'), role: 'img' }, icon('screen')) : null));
  }

  async _end(r) {
    if (!(await confirmDialog({ title: 'adm_end_title', body: 'adm_end_body', ok: 'adm_end_call', args: { room: r.name, n: r.participants.length }, danger: true }))) return;
    await this.ctx.act(() => admin.endRoom(r.name), 'adm_ended_ok', { room: r.name }, () => this.poller.tick());
  }
}
