// Lobby: live rooms (refreshed while visible), create / enter a room by name.

import { $, h, setText, setAttrText, validRoom, initials, hueOf, toast } from './common.js';
import { icon } from './icons.js';
import * as api from './api.js';
import { confirmDialog } from './dialog.js';

const POLL_MS = 5000;

export class Lobby {
  /** opts: onJoin(name), onAuthLost() */
  constructor(opts) {
    this.o = opts;
    this.view = $('#lobby');
    this.list = $('#room-list');
    this.me = null;
    this.timer = 0;
    this.abort = null;
    this.rooms = null;
    this.pages = 1; // pages of rooms shown; "Show more rooms" adds one
    $('#join-form').addEventListener('submit', (e) => { e.preventDefault(); this._submit(); });
    $('#room-name').addEventListener('input', () => { $('#room-name-error').hidden = true; $('#room-name').removeAttribute('aria-invalid'); });
    $('#refresh-rooms').addEventListener('click', () => this.refresh(true));
    $('#more-rooms').addEventListener('click', () => { this.pages += 1; this.refresh(); });
    document.addEventListener('visibilitychange', () => { if (!this.view.hidden && !document.hidden) this.refresh(); });
  }

  show(me) {
    this.me = me;
    this.view.hidden = false;
    $('#admin-link').hidden = me?.role !== 'admin'; // the API decides; this only shows the way
    document.title = 'WebCall';
    this.refresh();
  }

  hide() {
    this.view.hidden = true;
    $('#admin-link').hidden = true;
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  async refresh(spin = false) {
    clearTimeout(this.timer);
    this.abort?.abort();
    const ctl = this.abort = new AbortController();
    const btn = $('#refresh-rooms');
    if (spin) btn.classList.add('spinning');
    try {
      const rooms = [];
      let cursor = null;
      let more = false;
      for (let page = 0; page < this.pages; page++) {
        const data = await api.listRooms(ctl.signal, cursor);
        if (Array.isArray(data?.rooms)) rooms.push(...data.rooms);
        cursor = data?.next_cursor || null;
        more = !!cursor;
        if (!more) break;
      }
      $('#more-rooms').hidden = !more;
      this.render(rooms, null, more);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 401) { this.o.onAuthLost(); return; }
      this.render(null, e);
    } finally {
      if (spin) setTimeout(() => btn.classList.remove('spinning'), 400);
    }
    if (!this.view.hidden && !document.hidden) this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }

  /** rooms: [{name, owner: {user_id, username}, participants, people: [names]}] or null on error. */
  render(rooms, err, more = false) {
    this.rooms = rooms;
    const empty = $('#rooms-empty');
    const failed = $('#rooms-error');
    failed.hidden = !!rooms;
    if (!rooms) {
      setText($('.rooms-error-text', failed), err && err.status === 0 ? 'rooms_offline' : 'rooms_unavailable');
      this.list.replaceChildren();
      empty.hidden = true;
      $('#more-rooms').hidden = true;
      return;
    }
    empty.hidden = rooms.length > 0;
    const sorted = [...rooms].sort((a, b) => (b.participants || 0) - (a.participants || 0) || a.name.localeCompare(b.name));
    this.list.replaceChildren(...sorted.map((r) => this._room(r)));
    $('#rooms-count').textContent = rooms.length ? `${rooms.length}${more ? '+' : ''}` : '';
  }

  _room(r) {
    const n = r.participants ?? (r.people || []).length;
    const people = (r.people || []).slice(0, 6);
    const mark = h('span', { class: 'room-mark', text: initials(r.name) });
    mark.style.setProperty('--hue', hueOf(r.name));
    const who = h('div', { class: 'room-people' });
    if (people.length) {
      for (const p of people) {
        const chip = h('span', { class: 'person', text: p });
        chip.style.setProperty('--hue', hueOf(p));
        who.append(chip);
      }
      if ((r.people || []).length > people.length) who.append(h('span', { class: 'person more', text: `+${r.people.length - people.length}` }));
    } else {
      who.append(h('span', { class: 'muted', i18n: 'room_quiet' }));
    }
    const count = h('span', { class: 'room-count', 'data-testid': 'room-count' }, icon('users'), h('span', { text: String(n) }));
    setAttrText(count, 'title', 'people_n', { n });
    count.dataset.i18nArgs = JSON.stringify({ n });
    const enter = h('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'enter-room', onclick: () => this.o.onJoin(r.name) },
      h('span', { i18n: 'join' }), icon('arrowRight'));
    const li = h('li', { class: 'room', dataset: { room: r.name }, 'data-testid': 'room-item' },
      mark,
      h('div', { class: 'room-main' },
        h('div', { class: 'room-title' }, h('span', { class: 'room-name', text: r.name, title: r.name }),
          r.owner?.username ? h('span', { class: 'room-owner', i18n: 'room_by', i18nArgs: { name: r.owner.username } }) : null),
        who),
      count);
    if (this.me && r.owner && r.owner.user_id === this.me.id) li.append(this._deleteButton(r.name));
    li.append(enter);
    return li;
  }

  _deleteButton(name) {
    const btn = h('button', { type: 'button', class: 'icon-btn danger', 'data-testid': 'delete-room' }, icon('trash'));
    setAttrText(btn, 'aria-label', 'delete_room', { name });
    btn.dataset.i18nArgs = JSON.stringify({ name });
    btn.addEventListener('click', async () => {
      const yes = await confirmDialog({ title: 'delete_confirm_title', body: 'delete_confirm_body', ok: 'delete_confirm_ok',
        args: { name }, danger: true });
      if (!yes) return;
      try { await api.deleteRoom(name); toast('room_deleted_ok', { name }, 'check'); } catch (e) {
        toast(e.code === 'not_room_owner' ? 'err_not_room_owner' : 'err_server', { code: e.code });
      }
      this.refresh();
    });
    return btn;
  }

  async _submit() {
    const input = $('#room-name');
    const name = input.value.trim();
    if (!validRoom(name)) {
      const err = $('#room-name-error');
      setText(err, name ? 'err_room_name' : 'err_required');
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    const btn = $('#join-room');
    btn.disabled = true;
    try {
      await api.createRoom(name); // 201: ours now
    } catch (e) {
      if (e.status === 401) { this.o.onAuthLost(); return; }
      const inline = { room_limit_reached: 'err_room_limit', room_creation_rate: 'err_room_rate' }[e.code];
      if (e.status === 422 || inline) {
        const err = $('#room-name-error');
        setText(err, inline || 'err_room_name');
        err.hidden = false;
        btn.disabled = false;
        return;
      }
      // 409 room_exists: just join it. Anything else: joining creates the room anyway.
    } finally {
      btn.disabled = false;
    }
    input.value = '';
    this.o.onJoin(name);
  }
}
