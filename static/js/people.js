// The participant list: everyone in the call with their microphone, camera and raised hand
// (raised hands first), you and the room's owner marked, pin and (for the owner) remove.
// Reads the tiles the call view keeps (their data-* attributes), so it never disagrees with them.

import { $, h, setAttrText, initials, hueOf } from './common.js';
import { icon } from './icons.js';

export class PeoplePanel {
  /** ui: the CallUI. The owner's user id comes from the session (ui.owner = {id, canKick}). */
  constructor(ui) {
    this.ui = ui;
    this.list = h('ul', { class: 'people-list', 'data-testid': 'people-list' });
    const close = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'people-close', onclick: () => this.toggle(false) }, icon('close'));
    setAttrText(close, 'aria-label', 'close_people');
    this.count = h('span', { class: 'count-badge', 'data-testid': 'people-count-title' });
    this.panel = h('aside', { class: 'people', id: 'people-panel', 'data-testid': 'people-panel', 'aria-labelledby': 'people-title' },
      h('header', { class: 'chat-head' },
        h('h2', { id: 'people-title' }, icon('users'), h('span', { i18n: 'people' }), this.count), close),
      h('div', { class: 'people-scroll' }, this.list));
    this.panel.hidden = true;
    $('#chat-panel').after(this.panel);
    this.badge = h('span', { class: 'badge people-badge', 'data-testid': 'people-count' });
    this.button = h('button', { type: 'button', class: 'ctl', id: 'toggle-people', 'data-testid': 'toggle-people',
      'aria-pressed': 'false', 'aria-controls': 'people-panel', 'data-i18n-title': 'people_title', onclick: () => this.toggle() },
    h('span', { class: 'ctl-icon' }, icon('users')), h('span', { class: 'ctl-label', i18n: 'people' }), this.badge);
    setAttrText(this.button, 'title', 'people_title');
    $('#leave').before(this.button);
    ui.onPeople = () => this.render();
    const prev = ui.onPanel;
    ui.onPanel = (which) => { if (which !== 'people') this.toggle(false); if (prev) prev(which); };
  }

  get open() { return !this.panel.hidden; }

  toggle(force) {
    const open = force === undefined ? this.panel.hidden : !!force;
    if (open === this.open) return;
    if (open && this.ui.chatOpen) this.ui.toggleChat(false);
    this.panel.hidden = !open;
    this.ui.view.dataset.people = String(open);
    this.button.setAttribute('aria-pressed', String(open));
    if (open) this.render();
    this.ui.layout();
  }

  /** Everyone, from the tiles: raised hands first, then you, then by name. */
  people() {
    const owner = this.ui.owner || {};
    return [...this.ui.tiles].map(([id, el]) => {
      const local = id === 'local';
      return {
        id, local,
        name: local ? (el.querySelector('[data-testid=local-name]')?.textContent || '') : el.dataset.username || '',
        audio: el.dataset.audio === 'true', video: el.dataset.video === 'true',
        hand: el.dataset.hand === 'true', screen: el.dataset.screen === 'true',
        owner: local ? !!owner.me : !!owner.id && el.dataset.userId === owner.id,
        guest: el.dataset.guest === 'true',
        host: el.dataset.host === 'true', // set by moderation.js
      };
    }).sort((a, b) => (b.hand - a.hand) || (b.local - a.local) || a.name.localeCompare(b.name));
  }

  render() {
    const all = this.people();
    this.badge.textContent = String(all.length);
    this.badge.hidden = all.length === 0;
    this.count.textContent = String(all.length);
    if (!this.open) return;
    const canKick = !!(this.ui.owner && this.ui.owner.canKick);
    this.list.replaceChildren(...all.map((p) => this._row(p, canKick)));
  }

  _row(p, canKick) {
    const av = h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(p.name) });
    av.style.setProperty('--hue', hueOf(p.name));
    const who = h('span', { class: 'person-name' }, h('span', { class: 'person-text', 'data-testid': 'person-name', text: p.name }));
    if (p.local) who.append(h('span', { class: 'person-tag', 'data-testid': 'person-you', i18n: 'you' }));
    if (p.guest) who.append(h('span', { class: 'person-tag person-guest', 'data-testid': 'person-guest', i18n: 'guest_badge' }));
    if (p.owner) who.append(h('span', { class: 'person-tag person-owner', 'data-testid': 'person-owner', i18n: 'room_owner' }));
    else if (p.host) who.append(h('span', { class: 'person-tag person-owner', 'data-testid': 'person-host', i18n: 'mod_host' }));
    const state = (on, onIcon, offIcon, onKey, offKey, testid) => {
      const s = h('span', { class: 'person-state', role: 'img', 'data-on': String(on), 'data-testid': testid }, icon(on ? onIcon : offIcon));
      setAttrText(s, 'aria-label', on ? onKey : offKey);
      setAttrText(s, 'title', on ? onKey : offKey);
      return s;
    };
    const row = h('li', {
      class: 'person', 'data-testid': 'person',
      dataset: { audio: String(p.audio), video: String(p.video), hand: String(p.hand), local: String(p.local), owner: String(p.owner) },
    }, av, who);
    if (!p.local) row.dataset.peerId = p.id;
    if (p.hand) {
      const hand = h('span', { class: 'person-hand', role: 'img', 'data-testid': 'person-hand' }, icon('hand'));
      setAttrText(hand, 'aria-label', 'hand_raised');
      setAttrText(hand, 'title', 'hand_raised');
      row.append(hand);
    }
    row.append(
      state(p.audio, 'mic', 'micOff', 'mic_on', 'mic_off', 'person-mic'),
      state(p.video || p.screen, p.screen ? 'screen' : 'cam', 'camOff', p.screen ? 'presenting_short' : 'cam_on', 'cam_off', 'person-cam'));
    const pin = h('button', { type: 'button', class: 'icon-btn person-pin', 'data-testid': 'person-pin',
      'aria-pressed': String(this.ui.pinned === p.id), onclick: () => { this.ui.pin(this.ui.pinned === p.id ? null : p.id); this.render(); } }, icon('pin'));
    named(pin, 'pin_name', p.name);
    row.append(pin);
    if (canKick && !p.local) {
      row.append(...(this.ui.moderationTools?.(p) || []));
      const kick = h('button', { type: 'button', class: 'icon-btn person-kick', 'data-testid': 'person-kick',
        onclick: () => this.ui.on.kick && this.ui.on.kick(p.id) }, icon('kick'));
      named(kick, 'kick_name', p.name);
      row.append(kick);
    }
    return row;
  }
}

/** A button's name and tooltip that mention a person (kept translated when the language changes). */
function named(btn, key, name) {
  btn.dataset.i18nArgs = JSON.stringify({ name });
  setAttrText(btn, 'aria-label', key, { name });
  setAttrText(btn, 'title', key, { name });
}
