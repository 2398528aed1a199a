// Reactions: a control that opens a row of emoji; the one picked is sent to the room
// ({"type":"reaction","emoji":…}) and, when the server echoes it to everyone, floats up over the
// sender's tile for a few seconds. The set is fixed and equals the server's (docs/protocol.md).
//
// Test hooks: [data-testid=toggle-reactions] (aria-expanded), [data-testid=reaction-menu] with
// button[data-emoji] each; on a tile, .reaction[data-testid=reaction][data-emoji] while it floats.

import { $, h, setAttrText } from './common.js';
import { icon } from './icons.js';

export const REACTIONS = ['👍', '👏', '😂', '❤️', '🎉', '😮'];
const SHOWN_MS = 4000;
const MAX_ON_TILE = 4;

/**
 * Adds the reactions control to the call controls (before Chat). onPick(emoji) sends it.
 * Returns { setEnabled(bool) }.
 */
export function mountReactions(onPick) {
  const controls = $('#controls');
  const btn = h('button', {
    type: 'button', class: 'ctl', id: 'toggle-reactions', 'data-testid': 'toggle-reactions',
    'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-controls': 'reaction-menu',
  }, h('span', { class: 'ctl-icon' }, icon('smile')), h('span', { class: 'ctl-label', i18n: 'react' }));
  setAttrText(btn, 'title', 'react_title');
  setAttrText(btn, 'aria-label', 'react_title'); // the label is hidden on phones
  const menu = h('div', { class: 'reaction-menu', id: 'reaction-menu', 'data-testid': 'reaction-menu', role: 'group', hidden: true });
  setAttrText(menu, 'aria-label', 'react_title');
  for (const emoji of REACTIONS) {
    const b = h('button', { type: 'button', class: 'reaction-pick', dataset: { emoji }, text: emoji });
    setAttrText(b, 'aria-label', 'reaction_label', { emoji });
    b.dataset.i18nArgs = JSON.stringify({ emoji });
    b.addEventListener('click', () => { onPick(emoji); close(); btn.focus(); });
    menu.append(b);
  }
  const wrap = h('div', { class: 'reaction-wrap' }, menu, btn);
  controls.insertBefore(wrap, $('#toggle-chat'));

  const open = () => {
    menu.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    menu.querySelector('button').focus();
  };
  const close = () => {
    menu.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
  };
  btn.addEventListener('click', () => (menu.hidden ? open() : close()));
  menu.addEventListener('keydown', (e) => {
    const items = [...menu.querySelectorAll('button')];
    const at = items.indexOf(document.activeElement);
    if (e.key === 'Escape') { e.preventDefault(); close(); btn.focus(); }
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      items[(at + (e.key === 'ArrowRight' ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  document.addEventListener('pointerdown', (e) => { if (!wrap.contains(e.target)) close(); });
  return {
    close,
    setEnabled(on) { btn.disabled = !on; if (!on) close(); },
  };
}

/** Floats `emoji` up over `tile` for a few seconds (at most a few at once per tile). */
export function showReaction(tile, emoji) {
  if (!tile || !REACTIONS.includes(emoji)) return;
  const live = tile.querySelectorAll('.reaction');
  if (live.length >= MAX_ON_TILE) live[0].remove();
  const el = h('span', { class: 'reaction', 'data-testid': 'reaction', dataset: { emoji }, 'aria-hidden': 'true', text: emoji });
  // A little sideways spread so quick repeats do not sit on top of each other.
  el.style.setProperty('--drift', `${Math.round((Math.random() - 0.5) * 60)}px`);
  tile.append(el);
  setTimeout(() => el.remove(), SHOWN_MS);
}
