// The password-reset page (/reset#TOKEN): the one-time link an administrator made. The token
// stays in the fragment (never sent in a request line or a Referer); the new password twice,
// then POST /api/v1/auth/password-reset. An unknown, used or expired link is explained.

import { $, $$, initPage, setText, setAttrText } from './common.js';
import { setIcon } from './icons.js';
import { request } from './api.js';

initPage();

/** The token from the fragment ('' when missing or mangled). */
function tokenFromHash() {
  try { return decodeURIComponent(location.hash.slice(1)).trim(); } catch { return ''; }
}
const token = tokenFromHash();
const form = $('#reset-form');

function state(name) {
  $('#reset').dataset.state = name;
  form.hidden = name !== 'form';
  $('#reset-invalid').hidden = name !== 'invalid';
  $('#reset-done').hidden = name !== 'done';
}

function fieldError(id, key) {
  const input = $(`#${id}`);
  setText($(`#${id}-error`), key);
  $(`#${id}-error`).hidden = false;
  input.setAttribute('aria-invalid', 'true');
}

function clearErrors() {
  for (const e of $$('.field-error, .form-error', form)) e.hidden = true;
  for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
}

for (const btn of $$('[data-reveal]')) {
  btn.addEventListener('click', () => {
    const input = $(`#${btn.dataset.reveal}`);
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    $('#reset-password2').type = input.type;
    btn.setAttribute('aria-pressed', String(show));
    setAttrText(btn, 'aria-label', show ? 'hide_password' : 'show_password');
    setIcon(btn.firstElementChild, show ? 'eyeOff' : 'eye');
  });
}

form.addEventListener('input', (e) => {
  const err = $(`#${e.target.id}-error`);
  if (err) err.hidden = true;
  e.target.removeAttribute('aria-invalid');
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const password = $('#reset-password').value;
  const again = $('#reset-password2').value;
  if (password.length < 8 || password.length > 128) fieldError('reset-password', password ? 'err_invalid_password' : 'err_required');
  else if (password !== again) fieldError('reset-password2', again ? 'reset_mismatch' : 'err_required');
  const bad = $('[aria-invalid="true"]', form);
  if (bad) { bad.focus(); return; }
  const btn = $('#reset-submit');
  btn.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    await request('/api/v1/auth/password-reset', { method: 'POST', auth: false, body: { token, password } });
    history.replaceState(null, '', location.pathname); // the link is spent
    state('done');
    $('#reset-sign-in').focus();
  } catch (err) {
    if (err.code === 'reset_link_invalid') { state('invalid'); return; }
    if (err.code === 'validation_failed' && err.field === 'password') { fieldError('reset-password', 'err_invalid_password'); return; }
    const error = $('#reset-error');
    if (err.code === 'network_error') setText(error, 'err_network');
    else if (err.status === 429) setText(error, 'reset_rate', { message: err.message });
    else setText(error, 'err_server', { code: err.code });
    error.hidden = false;
  } finally {
    btn.disabled = false;
    form.removeAttribute('aria-busy');
  }
});

if (!token) state('invalid'); else state('form');
