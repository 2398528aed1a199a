// What every page shares: DOM helpers, the language switch, the background, notices and toasts.

import { t, applyI18n, getLang, setLang, onLangChange } from './i18n.js';
import { hydrateIcons, icon } from './icons.js';
import { startBackground } from './background.js';

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * Create an element. attrs: class, text (textContent), dataset, i18n (key), i18nArgs, on<event>,
 * anything else as an attribute. Children: nodes or strings (as text, never HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'i18n') el.dataset.i18n = v;
    else if (k === 'i18nArgs') el.dataset.i18nArgs = JSON.stringify(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  if (attrs.i18n) applyI18n(el);
  return el;
}

/** Set an element's translated text (kept translated when the language changes). */
export function setText(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args); else delete el.dataset.i18nArgs;
  applyI18n(el);
}

/** Same for an attribute (aria-label, title, placeholder). */
export function setAttrText(el, attr, key, args) {
  el.dataset[`i18n${attr.replace(/(^|-)([a-z])/g, (_, __, c) => c.toUpperCase())}`] = key;
  el.setAttribute(attr, t(key, args));
}

export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const validRoom = (name) => typeof name === 'string' && ROOM_RE.test(name);

export const isLoopback = () => ['localhost', '127.0.0.1', '[::1]', '::1'].includes(location.hostname);

/** Language switch buttons, background, icons, translations. Returns the background controller. */
export function initPage() {
  const bg = startBackground($('#bg'));
  hydrateIcons(document);
  applyI18n(document);
  for (const group of $$('[data-lang-switch]')) {
    for (const btn of $$('button[data-lang]', group)) {
      btn.addEventListener('click', () => setLang(btn.dataset.lang));
    }
  }
  const mark = () => {
    for (const btn of $$('[data-lang-switch] button[data-lang]')) {
      btn.setAttribute('aria-pressed', String(btn.dataset.lang === getLang()));
    }
  };
  mark();
  onLangChange(() => { applyI18n(document); mark(); });
  if (!window.isSecureContext) {
    showNotice({ id: 'insecure', kind: 'warn', icon: 'lock', key: 'notice_insecure', dismissible: true });
  }
  return bg;
}

// ---- notices: persistent banners under the top bar ----
/**
 * showNotice({id, kind: 'info'|'warn'|'error', key, args, icon, action: {key, onClick, testid}, dismissible})
 * Replaces a notice with the same id.
 */
export function showNotice({ id, kind = 'info', key, args, icon: ic, action, dismissible = true }) {
  const host = $('#notices');
  if (!host) return null;
  clearNotice(id);
  const n = h('div', { class: `notice notice-${kind}`, dataset: { notice: id }, role: kind === 'error' ? 'alert' : 'status' },
    icon(ic || (kind === 'info' ? 'info' : 'alert')),
    h('p', { class: 'notice-text', i18n: key, i18nArgs: args }));
  if (action) {
    n.append(h('button', {
      class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': action.testid, i18n: action.key,
      onclick: () => action.onClick(n),
    }));
  }
  if (dismissible) {
    const x = h('button', { class: 'icon-btn', type: 'button', 'data-i18n-aria-label': 'dismiss', onclick: () => n.remove() }, icon('close'));
    applyI18n(x);
    n.append(x);
  }
  host.append(n);
  return n;
}

export function clearNotice(id) {
  for (const n of $$(`#notices [data-notice="${id}"]`)) n.remove();
}

// ---- toasts: short messages that go away ----
export function toast(key, args, ic = 'info') {
  const host = $('#toasts');
  if (!host) return;
  const el = h('div', { class: 'toast', role: 'status' }, icon(ic), h('span', { i18n: key, i18nArgs: args }));
  host.append(el);
  while (host.children.length > 4) host.firstElementChild.remove();
  setTimeout(() => { el.classList.add('toast-out'); setTimeout(() => el.remove(), 400); }, 4000);
}

/** Two-letter initials for an avatar, and a stable hue from the name. */
export function initials(name = '?') {
  const parts = String(name).split(/[\s._-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : String(name).slice(0, 2);
  return s.toUpperCase();
}

export function hueOf(name = '') {
  let x = 0;
  for (const ch of String(name)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return 190 + (x % 110); // cyan → violet → pink
}

/** Safe redirect target: a same-origin path only. */
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  return next;
}
