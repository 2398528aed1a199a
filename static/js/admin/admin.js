// Entry of the admin panel (admin.html, served at /admin): signed in and an admin, or the
// sign-in page / "Admins only"; six tabs (Users, Rooms, Live calls, TURN, Keys, Audit log),
// the one shown named in the address (#users, #rooms, …); every action's outcome as a toast,
// with the server's own message when it refused.

import { $, $$, initPage, toast, initials, hueOf } from '../common.js';
import { applyI18n, onLangChange, formatDuration } from '../i18n.js';
import * as api from '../api.js';
import { UsersTab } from './users.js';
import { RoomsTab } from './rooms.js';
import { CallsTab } from './calls.js';
import { TurnTab } from './turn.js';
import { KeysTab } from './keys.js';
import { AuditTab } from './audit.js';

initPage();

const TABS = { users: UsersTab, rooms: RoomsTab, calls: CallsTab, turn: TurnTab, keys: KeysTab, audit: AuditTab };

function goSignIn() {
  api.clearToken();
  location.replace(`/static/auth.html?next=${encodeURIComponent(location.pathname + location.hash)}`);
}

/** Not (or no longer) an admin: say so, stop everything, offer the way back. */
function denied() {
  for (const tab of Object.values(tabs)) tab.hide();
  $('#loading').hidden = true;
  $('#admin').hidden = true;
  $('#denied').hidden = false;
}

/** What every tab does with a failure: sign in again, "Admins only", or a toast with the reason. */
function fail(e, { quiet = false } = {}) {
  if (e.name === 'AbortError') return;
  if (e.status === 401) { goSignIn(); return; }
  if (e.status === 403 && (e.code === 'forbidden' || e.code === 'banned')) { denied(); return; }
  if (e.status === 429) { toast('adm_err_rate', { wait: formatDuration(e.retryAfter || 60) }, 'alert'); return; }
  if (quiet) return;
  if (e.status === 0) { toast('err_network', null, 'alert'); return; }
  toast('adm_err_action', { message: e.message || e.code }, 'alert');
}

/** Run an action; on success a toast (`okKey`) and `after()`. Resolves whether it worked. */
async function act(run, okKey, args, after, onError) {
  try {
    await run();
  } catch (e) {
    fail(e);
    if (onError && e.status !== 401 && e.status !== 403) onError(e);
    return false;
  }
  if (okKey) toast(okKey, args, 'check');
  if (after) after();
  return true;
}

const ctx = { me: null, fail, act, lostAdmin: () => denied() };
const tabs = {};
let current = null;

function tabFromHash() {
  const name = location.hash.slice(1);
  return TABS[name] ? name : 'users';
}

function select(name, focus = false) {
  for (const btn of $$('[role=tab]', $('#admin-tabs'))) {
    const on = btn.dataset.tab === name;
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
    if (on && focus) btn.focus();
    if (on) btn.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
  for (const panel of $$('[role=tabpanel]', $('#admin'))) panel.hidden = panel.dataset.tab !== name;
  if (current && current !== name) tabs[current].hide();
  current = name;
  if (!tabs[name]) {
    tabs[name] = new TABS[name](ctx);
    $(`#panel-${name}`).append(tabs[name].el);
    applyI18n(tabs[name].el); // placeholders and labels set by attribute
  }
  tabs[name].show();
  if (location.hash.slice(1) !== name) history.replaceState(null, '', `#${name}`);
}

function wireTabs() {
  const buttons = $$('[role=tab]', $('#admin-tabs'));
  for (const btn of buttons) {
    btn.addEventListener('click', () => select(btn.dataset.tab));
    btn.addEventListener('keydown', (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (e.key === 'Home' || e.key === 'End') {
        e.preventDefault();
        select(buttons[e.key === 'Home' ? 0 : buttons.length - 1].dataset.tab, true);
      } else if (step) {
        e.preventDefault();
        const i = (buttons.indexOf(btn) + step + buttons.length) % buttons.length;
        select(buttons[i].dataset.tab, true);
      }
    });
  }
  window.addEventListener('hashchange', () => { if (!$('#admin').hidden) select(tabFromHash()); });
  onLangChange(() => { for (const tab of Object.values(tabs)) tab.relabel(); });
}

function showUser(me) {
  $('#user-chip').hidden = false;
  $('#user-name').textContent = me.username;
  const av = $('#user-avatar');
  av.textContent = initials(me.username);
  av.style.setProperty('--hue', hueOf(me.username));
}

async function main() {
  if (!api.getToken()) { goSignIn(); return; }
  let me;
  try {
    me = await api.me();
  } catch (e) {
    if (e.status === 401 || (e.status === 403 && e.code === 'banned')) { goSignIn(); return; }
    $('#loading').hidden = true;
    $('#offline').hidden = false;
    return;
  }
  api.startTokenRefresh();
  api.onSessionLost(goSignIn);
  ctx.me = me;
  showUser(me);
  $('#logout').addEventListener('click', async () => { await api.logout(); location.replace('/static/auth.html'); });
  if (me.role !== 'admin') { denied(); return; }
  $('#loading').hidden = true;
  $('#admin').hidden = false;
  wireTabs();
  select(tabFromHash());
}

$('#retry').addEventListener('click', () => location.reload());
main();
