// What the call says about itself, beyond tiles and controls: the "Reconnecting…" banner while
// the signaling socket is lost (from the status pill's data-state), a tile's "Reconnecting…" when
// its peer connection drops, the "You are alone — share this link" card, the "You left ROOM —
// Rejoin / Back to rooms" view, and the lane that keeps toasts off the video tiles during a call.
//
// Test hooks: [data-notice=reconnecting] (the banner), [data-testid=alone-card] with
// alone-link and alone-copy, [data-testid=left-view] with left-title, rejoin and back-to-rooms.

import { $, h, showNotice, clearNotice, setText, toast } from './common.js';
import { icon } from './icons.js';

/** The shareable link of a room. */
export const roomLink = (room) => `${location.origin}/r/${encodeURIComponent(room)}`;

// ---- the banner: follows the status pill, so whoever sets the status drives it ----
function watchStatus() {
  const pill = $('#conn-status');
  if (!pill) return;
  let wasLost = false;
  const update = () => {
    const inCall = !$('#call').hidden;
    const lost = inCall && pill.dataset.state === 'reconnecting';
    if (lost && !wasLost) {
      const n = showNotice({ id: 'reconnecting', kind: 'warn', icon: 'refresh', key: 'reconnecting_banner', dismissible: false });
      n?.setAttribute('role', 'alert');
    } else if (!lost && wasLost) {
      clearNotice('reconnecting');
      if (inCall && pill.dataset.state === 'connected') toast('reconnected', null, 'check');
    }
    wasLost = lost;
    updateAlone();
  };
  new MutationObserver(update).observe(pill, { attributes: true, attributeFilter: ['data-state'] });
  new MutationObserver(update).observe($('#call'), { attributes: true, attributeFilter: ['hidden'] });
}

/** A remote tile's connection state changed: once it was connected, anything else is a reconnect. */
export function tileConnection(tile, state) {
  if (!tile) return;
  if (state === 'connected') tile.dataset.wasConnected = 'true';
  const label = tile.querySelector('.tile-conn [data-i18n]');
  if (!label) return;
  const again = tile.dataset.wasConnected === 'true' && state !== 'connected';
  setText(label, again ? 'peer_reconnecting' : 'connecting_peer');
  tile.dataset.reconnecting = String(again);
}

// ---- "You are alone — share this link" ----
let aloneRoom = '';
let aloneCard = null;
let onCopy = null;

function buildAlone() {
  const link = h('input', { class: 'alone-link', 'data-testid': 'alone-link', readonly: true, 'aria-labelledby': 'alone-sub', spellcheck: 'false' });
  link.addEventListener('focus', () => link.select());
  const copy = h('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-testid': 'alone-copy' },
    icon('link'), h('span', { i18n: 'copy_link' }));
  copy.addEventListener('click', () => onCopy && onCopy());
  aloneCard = h('div', { class: 'alone-card', 'data-testid': 'alone-card', role: 'status', hidden: true },
    h('span', { class: 'alone-icon' }, icon('users')),
    h('div', { class: 'alone-main' },
      h('p', { class: 'alone-title', i18n: 'alone_title' }),
      h('p', { class: 'alone-sub muted', id: 'alone-sub', i18n: 'alone_sub' }),
      h('div', { class: 'alone-row' }, link, copy)));
  $('#stage').append(aloneCard);
}

/** The room the call is in ('' when none) and what Copy does. */
export function setAloneRoom(room, copy) {
  aloneRoom = room || '';
  onCopy = copy || null;
  if (!aloneCard) buildAlone();
  aloneCard.querySelector('.alone-link').value = aloneRoom ? roomLink(aloneRoom) : '';
  updateAlone();
}

function updateAlone() {
  if (!aloneCard) return;
  const inCall = !$('#call').hidden && !!aloneRoom;
  const connected = $('#conn-status')?.dataset.state === 'connected';
  const others = $('#grid').querySelector('[data-testid="remote-tile"]');
  const show = inCall && connected && !others;
  aloneCard.hidden = !show;
  $('#stage').dataset.alone = String(show);
}

// ---- "You left ROOM" ----
let leftView = null;

/** Shows the view after leaving; onLobby() goes to the room list. Rejoin loads /r/ROOM. */
export function showLeft(room, onLobby) {
  if (!leftView) {
    leftView = h('section', { class: 'left-view', id: 'left-view', 'data-testid': 'left-view', hidden: true, 'aria-labelledby': 'left-title' });
    $('#main').append(leftView);
  }
  const rejoin = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'rejoin' },
    icon('refresh'), h('span', { i18n: 'rejoin' }));
  rejoin.addEventListener('click', () => location.assign(`/r/${encodeURIComponent(room)}${location.search}`));
  const lobby = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'back-to-rooms' },
    icon('grid'), h('span', { i18n: 'back_to_rooms' }));
  lobby.addEventListener('click', () => { hideLeft(); onLobby(); });
  leftView.replaceChildren(h('div', { class: 'card left-card' },
    h('span', { class: 'left-icon' }, icon('leave')),
    h('h1', { id: 'left-title', class: 'left-title', 'data-testid': 'left-title', i18n: 'left_title', i18nArgs: { room } }),
    h('p', { class: 'muted', i18n: 'left_sub' }),
    h('div', { class: 'left-actions' }, rejoin, lobby)));
  leftView.hidden = false;
  document.title = 'WebCall';
  rejoin.focus();
}

export function hideLeft() {
  if (leftView) leftView.hidden = true;
}

// ---- toasts: in a call, a lane between the stage and the controls (the stage shrinks) ----
function watchToasts() {
  const host = $('#toasts');
  const call = $('#call');
  if (!host || !call) return;
  const place = () => {
    const inCall = document.body.classList.contains('in-call');
    if (inCall && host.parentElement !== call) call.insertBefore(host, $('#controls'));
    else if (!inCall && host.parentElement === call) document.body.append(host);
    host.classList.toggle('toast-lane', inCall);
  };
  new MutationObserver(place).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  place();
}

/** Once, at page start. */
export function initFeedback() {
  if (!$('#call')) return;
  watchStatus();
  watchToasts();
  new MutationObserver(updateAlone).observe($('#grid'), { childList: true });
}
