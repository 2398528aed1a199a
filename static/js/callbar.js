// The call's extra controls: the grid / speaker view switch, keyboard shortcuts and their help
// dialog, the "More" menu that holds the secondary buttons on a phone, and the call timer in the
// top bar. Built here (not in index.html) so the page's markup stays as it was.

import { $, h, setAttrText } from './common.js';
import { icon } from './icons.js';
import { onLangChange } from './i18n.js';

const SHORTCUTS = [
  ['M', 'key_mic'], ['V', 'key_cam'], ['H', 'key_hand'], ['C', 'key_chat'], ['P', 'key_people'],
  ['S', 'key_view'], ['F', 'key_fullscreen'], ['?', 'key_help'], ['Esc', 'key_escape'],
];

/** mm:ss, then h:mm:ss. */
export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}

export class CallBar {
  /** ui: the CallUI; people: the PeoplePanel. */
  constructor(ui, people) {
    this.ui = ui;
    this.people = people;
    const leave = $('#leave');
    this.view = ctl('toggle-view', 'speaker', 'view_speaker', 'view_title', () => ui.toggleMode());
    this.view.setAttribute('aria-pressed', 'false');
    this.help = ctl('shortcuts', 'keyboard', 'shortcuts', 'shortcuts_title', () => this.openHelp());
    this.moreBtn = ctl('more-controls', 'more', 'more', 'more_title', () => this.toggleMenu());
    this.moreBtn.setAttribute('aria-haspopup', 'menu');
    this.moreBtn.setAttribute('aria-expanded', 'false');
    this.help.classList.add('ctl-secondary');
    this.view.classList.add('ctl-secondary');
    ui.controls.screen.classList.add('ctl-secondary');
    // On the narrowest bars the hand goes under More too (its button does the work).
    ui.controls.hand.classList.add('ctl-tertiary');
    leave.before(this.view, this.help, this.moreBtn);
    this.menu = h('div', { class: 'more-menu', role: 'menu', 'data-testid': 'more-menu' });
    this.menu.hidden = true;
    $('#controls').append(this.menu);
    this.menu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.stopPropagation(); this.toggleMenu(false); this.moreBtn.focus(); }
    });
    document.addEventListener('pointerdown', (e) => {
      if (!this.menu.hidden && !e.target.closest('.more-menu, #more-controls')) this.toggleMenu(false);
    });
    const prev = ui.onLayout;
    ui.onLayout = (mode) => { this._viewButton(mode); this.fit(); if (prev) prev(mode); };
    new ResizeObserver(() => this.fit()).observe($('#controls'));
    onLangChange(() => this.fit());

    // The call timer: time since you joined, in the top bar.
    this.timer = h('span', { class: 'call-timer', 'data-testid': 'call-timer', role: 'timer' }, icon('clock'), h('span', { class: 'call-timer-text', text: '00:00' }));
    setAttrText(this.timer, 'aria-label', 'call_time');
    $('#conn-status').after(this.timer);
    this.started = 0;
    this.tick = 0;

    this.dialog = this._helpDialog();
    document.addEventListener('keydown', (e) => this._key(e));
  }

  /** The call started (ui.show): the timer counts from now. */
  start() {
    this.started = Date.now();
    clearInterval(this.tick);
    const show = () => { this.timer.lastChild.textContent = formatDuration(Date.now() - this.started); };
    show();
    this.tick = setInterval(show, 1000);
  }

  stop() {
    clearInterval(this.tick);
    this.tick = 0;
    this.toggleMenu(false);
    if (this.dialog.open) this.dialog.close();
  }

  /**
   * The controls fit the width they have (less with the chat open, more in English than in
   * Russian): all with labels; else the secondary ones (share, view, keys) under "More"; else
   * icons only (the labels stay as their accessible names); else the hand under "More" too.
   * Buttons stay 44 px or wider where that fits.
   */
  fit() {
    const view = this.ui.view;
    if (view.hidden) return;
    const bar = $('#controls');
    const room = this.ui.stage.clientWidth;
    for (const level of ['', 'more', 'icons', 'fewer']) {
      if (view.dataset.compact !== level) view.dataset.compact = level;
      if (level === 'fewer') break;
      const shown = [...bar.querySelectorAll('.ctl')].filter((b) => b.offsetParent !== null);
      const cut = shown.some((b) => { const l = b.querySelector('.ctl-label'); return l && l.offsetWidth > 1 && l.scrollWidth > l.clientWidth + 1; });
      const narrow = shown.some((b) => b.offsetWidth < 44);
      if (bar.offsetWidth <= room + 1 && bar.scrollWidth <= bar.clientWidth + 1 && !cut && !narrow) break;
    }
  }

  _viewButton(mode) {
    const speaker = mode === 'speaker';
    this.view.setAttribute('aria-pressed', String(speaker));
  }

  toggleMenu(force) {
    const open = force === undefined ? this.menu.hidden : !!force;
    if (open) {
      const items = [];
      if (!this.ui.controls.screen.hidden) items.push(['screen', this.ui.controls.screen.getAttribute('aria-pressed') === 'true' ? 'stop_presenting' : 'screen_title', () => this.ui.on.screen && this.ui.on.screen()]);
      items.push([this.ui.effectiveMode === 'speaker' ? 'grid' : 'speaker', this.ui.effectiveMode === 'speaker' ? 'view_grid' : 'view_speaker', () => this.ui.toggleMode()]);
      items.push(['keyboard', 'shortcuts_title', () => this.openHelp()]);
      // Buttons folded away on this bar (hand, settings…): the same button, clicked.
      for (const c of [...$('#controls').querySelectorAll('.ctl-tertiary')].reverse()) {
        if (c.offsetParent !== null || c.hidden) continue;
        const label = c.querySelector('.ctl-label');
        const key = label?.dataset.i18n || '';
        const pressed = c.hasAttribute('aria-pressed') ? c.getAttribute('aria-pressed') === 'true' : undefined;
        items.unshift([c.querySelector('.ctl-icon svg')?.cloneNode(true), key, () => c.click(), pressed]);
      }
      this.menu.replaceChildren(...items.map(([ic, key, run, pressed]) => {
        const item = h('button', {
          type: 'button', role: pressed === undefined ? 'menuitem' : 'menuitemcheckbox', class: 'more-item',
          onclick: () => { this.toggleMenu(false); run(); },
        }, typeof ic === 'string' ? icon(ic) : ic, h('span', { i18n: key }));
        if (pressed !== undefined) item.setAttribute('aria-checked', String(pressed));
        return item;
      }));
    }
    this.menu.hidden = !open;
    this.moreBtn.setAttribute('aria-expanded', String(open));
    if (open) this.menu.querySelector('button')?.focus();
  }

  _helpDialog() {
    const rows = SHORTCUTS.map(([k, key]) => h('div', { class: 'key-row' }, h('kbd', { text: k }), h('span', { i18n: key })));
    const close = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'shortcuts-close', onclick: () => dialog.close() }, icon('close'));
    setAttrText(close, 'aria-label', 'close');
    const dialog = h('dialog', { class: 'help-dialog', 'data-testid': 'shortcuts-dialog', 'aria-labelledby': 'shortcuts-heading' },
      h('header', { class: 'chat-head' }, h('h2', { id: 'shortcuts-heading' }, icon('keyboard'), h('span', { i18n: 'shortcuts_title' })), close),
      h('div', { class: 'key-list' }, rows),
      h('p', { class: 'muted key-note', i18n: 'shortcuts_note' }));
    dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
    document.body.append(dialog);
    return dialog;
  }

  openHelp() { if (!this.dialog.open) this.dialog.showModal(); }

  _key(e) {
    const ui = this.ui;
    if (ui.view.hidden || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return;
    if (this.dialog.open && e.key !== '?') return; // the dialog has the keyboard (Esc closes it)
    const c = ui.controls;
    const press = (name) => { if (ui.on[name] && !c[name].disabled) ui.on[name](); };
    const actions = {
      m: () => press('mic'), v: () => press('cam'), h: () => press('hand'),
      c: () => ui.toggleChat(), p: () => this.people.toggle(), s: () => ui.toggleMode(),
      f: () => ui.fullscreen(ui.pinned || ui.main), '?': () => (this.dialog.open ? this.dialog.close() : this.openHelp()),
    };
    const run = actions[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!run) return;
    e.preventDefault();
    run();
  }
}

function ctl(id, ic, label, title, onclick) {
  const b = h('button', { type: 'button', class: 'ctl', id, 'data-testid': id, onclick },
    h('span', { class: 'ctl-icon', 'data-icon': ic }, icon(ic)), h('span', { class: 'ctl-label', i18n: label }));
  b.querySelector('.ctl-icon').dataset.iconShown = ic;
  setAttrText(b, 'title', title);
  return b;
}
