// A small accessible confirmation dialog: a modal <dialog> (role and aria-modal from the
// browser), title and text by i18n key (re-translated on a language switch), Esc or Cancel
// says no, focus stays inside while it is open and goes back where it was after.
//
//   if (await confirmDialog({ title: 'kick_confirm_title', body: 'kick_confirm_body',
//     ok: 'kick_confirm_ok', args: { name }, danger: true })) { … }
//
// An optional `choice` ({label: i18n key, checked, body?}) adds a checkbox ("Also ban from this
// room"); its `checked` follows the box, for the caller to read after a yes, and while it is
// ticked the text is `choice.body` when given.
//
// Test hooks: [data-testid=confirm-dialog] (open while asking), confirm-ok, confirm-cancel,
// confirm-choice (the checkbox).

import { h, setText } from './common.js';

let current = null; // the open dialog's answer, so a second question replaces the first

/** Ask; resolves true (confirmed) or false (cancelled, Esc, or replaced by another question). */
export function confirmDialog({ title, body, ok, cancel = 'cancel', args, danger = false, choice = null }) {
  if (current) current(false);
  const back = document.activeElement;
  const titleId = `confirm-title-${Date.now()}`;
  const bodyId = `${titleId}-body`;
  const okBtn = h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, 'data-testid': 'confirm-ok', i18n: ok, i18nArgs: args });
  const cancelBtn = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'confirm-cancel', i18n: cancel });
  const bodyEl = body ? h('p', { id: bodyId, class: 'confirm-body', i18n: body, i18nArgs: args }) : null;
  const box = choice && h('input', { type: 'checkbox', 'data-testid': 'confirm-choice', onchange: () => {
    choice.checked = box.checked;
    if (choice.body && bodyEl) setText(bodyEl, box.checked ? choice.body : body, args);
  } });
  if (box) box.checked = !!choice.checked;
  const dlg = h('dialog', { class: 'confirm', 'data-testid': 'confirm-dialog', 'aria-labelledby': titleId, 'aria-describedby': body ? bodyId : null },
    h('div', { class: 'confirm-box' },
      h('h2', { id: titleId, class: 'confirm-title', i18n: title, i18nArgs: args }),
      bodyEl,
      box ? h('label', { class: 'confirm-choice' }, box, h('span', { i18n: choice.label, i18nArgs: args })) : null,
      h('div', { class: 'confirm-actions' }, cancelBtn, okBtn)));
  document.body.append(dlg);

  return new Promise((resolve) => {
    const done = (answer) => {
      if (current !== done) return;
      current = null;
      dlg.removeEventListener('keydown', trap);
      if (dlg.open) dlg.close();
      dlg.remove();
      if (back && back.isConnected && typeof back.focus === 'function') back.focus();
      resolve(answer);
    };
    current = done;
    // Tab and Shift+Tab cycle between the buttons (and the checkbox) only.
    const trap = (e) => {
      e.stopPropagation(); // no call shortcut (M, V, H…) behind the dialog
      if (e.key !== 'Tab') return;
      const items = box ? [box, cancelBtn, okBtn] : [cancelBtn, okBtn];
      const at = items.indexOf(document.activeElement);
      e.preventDefault();
      items[(at + (e.shiftKey ? items.length - 1 : 1)) % items.length].focus();
    };
    dlg.addEventListener('keydown', trap);
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); }); // Esc
    dlg.addEventListener('click', (e) => { if (e.target === dlg) done(false); }); // the backdrop
    cancelBtn.addEventListener('click', () => done(false));
    okBtn.addEventListener('click', () => done(true));
    dlg.showModal();
    // The safe choice has the focus: Enter right away does not remove anyone.
    cancelBtn.focus();
  });
}

/** Whether a confirmation is open now. */
export const asking = () => current !== null;
