// The panel's two dialogs besides confirmDialog (../dialog.js, used for every destructive
// action): the one-time password-reset link with a Copy button, and "who owns this room now?"
// (a username, checked against the server). Same look as the confirmation: a modal <dialog>,
// Esc or the backdrop closes it, focus goes back where it was.

import { h, toast } from '../common.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

/** A modal dialog with `children` inside the box; resolves with what close(value) gets. */
function modal(testid, title, args, build) {
  const back = document.activeElement;
  const titleId = `${testid}-title`;
  const dlg = h('dialog', { class: 'confirm adm-dialog', 'data-testid': testid, 'aria-labelledby': titleId });
  return new Promise((resolve) => {
    const close = (value) => {
      if (dlg.open) dlg.close();
      dlg.remove();
      if (back && back.isConnected && typeof back.focus === 'function') back.focus();
      resolve(value);
    };
    dlg.append(h('div', { class: 'confirm-box' },
      h('h2', { id: titleId, class: 'confirm-title', i18n: title, i18nArgs: args }),
      ...build(close)));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(null); });
    dlg.addEventListener('click', (e) => { if (e.target === dlg) close(null); });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('[autofocus]')?.focus();
  });
}

/** Copies `text`: the Clipboard API, or selecting the field and the old copy command. */
async function copy(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field.select();
    try { return document.execCommand('copy'); } catch { return false; }
  }
}

/** Shows a fresh reset link once: {url, expires_at} for `name`. */
export function showResetLink(name, link, when) {
  return modal('reset-link-dialog', 'adm_reset_title', { name }, (close) => {
    const field = h('input', { class: 'adm-link-field', 'data-testid': 'reset-link-url', readonly: true, value: link.url, spellcheck: 'false', 'aria-label': t('adm_reset_link_label') });
    const copyBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'reset-link-copy', autofocus: true },
      icon('link'), h('span', { i18n: 'adm_copy' }));
    copyBtn.addEventListener('click', async () => {
      const ok = await copy(link.url, field);
      toast(ok ? 'adm_copied' : 'adm_copy_failed', null, ok ? 'check' : 'alert');
      if (ok) copyBtn.dataset.copied = 'true';
    });
    field.addEventListener('focus', () => field.select());
    return [
      h('p', { class: 'confirm-body', i18n: 'adm_reset_body', i18nArgs: { name, time: when(link.expires_at) } }),
      h('div', { class: 'adm-link-row' }, field, copyBtn),
      h('div', { class: 'confirm-actions' },
        h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'reset-link-close', i18n: 'adm_done', onclick: () => close(true) })),
    ];
  });
}

/**
 * Asks for the new owner of `room` by username. `find(username)` → the user or null (throws on
 * a server error); resolves with the user, or null when cancelled.
 */
export function askOwner(room, current, find) {
  return modal('owner-dialog', 'adm_owner_title', { room }, (close) => {
    const input = h('input', { id: 'owner-username', 'data-testid': 'owner-username', value: current || '', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', autofocus: true, 'aria-describedby': 'owner-error' });
    const err = h('p', { class: 'field-error', id: 'owner-error', 'data-testid': 'owner-error', role: 'alert', hidden: true });
    const ok = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'owner-ok', i18n: 'adm_owner_ok' });
    const form = h('form', { class: 'field', novalidate: true },
      h('label', { for: 'owner-username', i18n: 'adm_owner_label' }), input, err,
      h('div', { class: 'confirm-actions adm-dialog-actions' },
        h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'owner-cancel', i18n: 'cancel', onclick: () => close(null) }),
        ok));
    const fail = (key, args) => { err.textContent = t(key, args); err.hidden = false; input.setAttribute('aria-invalid', 'true'); input.focus(); };
    input.addEventListener('input', () => { err.hidden = true; input.removeAttribute('aria-invalid'); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) return fail('err_required');
      ok.disabled = true;
      try {
        const user = await find(name);
        if (user) close(user); else fail('adm_owner_unknown', { name });
      } catch (ex) {
        fail('adm_err_action', { message: ex.message || ex.code });
      } finally { ok.disabled = false; }
    });
    return [h('p', { class: 'confirm-body', i18n: 'adm_owner_body', i18nArgs: { room } }), form];
  });
}
