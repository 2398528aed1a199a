// Sign-in / register page.

import { $, $$, initPage, setText, setAttrText, safeNext, validRoom } from './common.js';
import { setIcon } from './icons.js';
import * as api from './api.js';

initPage();

// Where to go afterwards: ?next=/r/team (same-origin path only) or #room=NAME, else the app.
function target() {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get('next'));
  if (next) return next;
  const room = new URLSearchParams(location.hash.slice(1)).get('room');
  if (room && validRoom(room)) return `/r/${encodeURIComponent(room)}`;
  return '/static/index.html';
}
const go = () => location.replace(target());

// Already signed in (a valid token): straight on.
if (api.getToken()) api.checkToken().then((s) => { if (s === 'ok') go(); else if (s === 'invalid') api.clearToken(); });

// ---- tabs ----
const tabs = [$('#tab-login'), $('#tab-register')];
function selectTab(tab, focus) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(`#${t.getAttribute('aria-controls')}`).hidden = !on;
  }
  if (focus) tab.focus();
  const first = $(`#${tab.getAttribute('aria-controls')} input`);
  if (!focus && first && document.activeElement !== tab) first.focus();
  history.replaceState(null, '', location.pathname + location.search + (tab === tabs[1] ? '#register' : keepHash()));
}
const keepHash = () => (location.hash.startsWith('#room=') ? location.hash : '');
for (const t of tabs) {
  t.addEventListener('click', () => selectTab(t));
  t.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') { e.preventDefault(); selectTab(tabs[(tabs.indexOf(t) + 1) % 2], true); }
  });
}
if (location.hash === '#register') selectTab(tabs[1]);

// ---- show / hide password ----
for (const btn of $$('[data-reveal]')) {
  btn.addEventListener('click', () => {
    const input = $(`#${btn.dataset.reveal}`);
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    btn.setAttribute('aria-pressed', String(show));
    setAttrText(btn, 'aria-label', show ? 'hide_password' : 'show_password');
    setIcon(btn.firstElementChild, show ? 'eyeOff' : 'eye');
  });
}

// ---- errors ----
function fieldError(form, name, key, args) {
  const input = $(`[name="${name}"]`, form);
  if (!input) return false;
  const err = $(`#${input.id}-error`);
  setText(err, key, args);
  err.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  return true;
}

function formError(form, key, args) {
  const err = $('.form-error', form);
  setText(err, key, args);
  err.hidden = false;
}

function clearErrors(form) {
  for (const e of $$('.field-error, .form-error', form)) e.hidden = true;
  for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
}

for (const form of $$('form')) {
  form.addEventListener('input', (e) => {
    const err = $(`#${e.target.id}-error`);
    if (err) err.hidden = true;
    e.target.removeAttribute('aria-invalid');
  });
}

function focusFirstInvalid(form) {
  const bad = $('[aria-invalid="true"]', form);
  if (bad) bad.focus();
}

let cooldown = 0;
function waitOut(form, seconds) {
  const btn = $('button[type="submit"]', form);
  clearInterval(cooldown);
  form.dataset.cooling = '1';
  let left = Math.ceil(seconds);
  const tick = () => {
    if (left <= 0) {
      clearInterval(cooldown); delete form.dataset.cooling; btn.disabled = false; $('.form-error', form).hidden = true; return;
    }
    formError(form, 'err_too_many_attempts', { s: left });
    left -= 1;
  };
  btn.disabled = true;
  tick();
  cooldown = setInterval(tick, 1000);
}

/** Show an ApiError where it belongs. */
function showApiError(form, e) {
  switch (e.code) {
    case 'invalid_credentials': return formError(form, 'err_invalid_credentials');
    case 'banned': return formError(form, 'err_banned');
    case 'registration_secret_invalid': return fieldError(form, 'secret', 'err_registration_secret_invalid');
    case 'email_taken': return fieldError(form, 'email', 'err_email_taken');
    case 'username_taken': return fieldError(form, 'username', 'err_username_taken');
    case 'validation_failed': {
      const field = e.field === 'email' || e.field === 'username' ? (form.id === 'login-form' ? 'login' : e.field) : e.field;
      if (field && fieldError(form, field, `err_invalid_${e.field}`)) return;
      return formError(form, 'err_validation_failed');
    }
    case 'too_many_attempts': return waitOut(form, e.retryAfter || 60);
    case 'network_error': return formError(form, 'err_network');
    default: return formError(form, 'err_server', { code: e.code });
  }
}

async function busy(form, work) {
  const btn = $('button[type="submit"]', form);
  btn.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try { await work(); } finally {
    form.removeAttribute('aria-busy');
    btn.disabled = form.dataset.cooling === '1';
  }
}

// ---- sign in ----
const loginForm = $('#login-form');
loginForm.addEventListener('submit', (e) => {
  e.preventDefault();
  clearErrors(loginForm);
  const id = $('#login-user').value.trim();
  const password = $('#login-password').value;
  if (!id) fieldError(loginForm, 'login', 'err_required');
  if (!password) fieldError(loginForm, 'password', 'err_required');
  if (!id || !password) return focusFirstInvalid(loginForm);
  busy(loginForm, async () => {
    try { await api.login(id, password); go(); } catch (err) {
      showApiError(loginForm, err);
      if (err.code === 'too_many_attempts') return;
      focusFirstInvalid(loginForm);
    }
  });
});

// ---- register ----
const regForm = $('#register-form');
regForm.addEventListener('submit', (e) => {
  e.preventDefault();
  clearErrors(regForm);
  const email = $('#register-email').value.trim();
  const username = $('#register-username').value.trim();
  const password = $('#register-password').value;
  const secret = $('#register-secret').value;
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) fieldError(regForm, 'email', email ? 'err_invalid_email' : 'err_required');
  if (!/^[A-Za-z0-9._-]{3,32}$/.test(username)) fieldError(regForm, 'username', username ? 'err_invalid_username' : 'err_required');
  if (password.length < 8 || password.length > 128) fieldError(regForm, 'password', password ? 'err_invalid_password' : 'err_required');
  if (!secret) fieldError(regForm, 'secret', 'err_required');
  if ($('[aria-invalid="true"]', regForm)) return focusFirstInvalid(regForm);
  busy(regForm, async () => {
    try {
      await api.register(email, username, password, secret);
    } catch (err) {
      showApiError(regForm, err);
      return focusFirstInvalid(regForm);
    }
    try { await api.login(username, password); go(); } catch (err) {
      // Registered but the sign-in failed: let them sign in by hand.
      selectTab(tabs[0]);
      $('#login-user').value = username;
      showApiError(loginForm, err);
    }
  });
});

// The forms are wired: until now a submit would have been the browser's own
// (a POST to this page, never the password in a URL). Tests wait for this.
document.body.dataset.ready = 'true';
