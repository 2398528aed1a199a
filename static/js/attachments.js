// Sending files from the chat (#19): the paperclip button (a hidden <input type=file multiple>),
// files dropped onto the chat panel (a "Drop files to share" overlay while they hover) and a
// screenshot pasted from the clipboard (named screenshot-YYYY-MM-DD-HHMMSS.png).
//
// Every file gets a row of its own under the chat log: name, size, a progress bar (XMLHttpRequest's
// upload.onprogress: fetch has none) and Cancel (xhr.abort()). Two upload at a time, the rest wait
// their turn. A refusal is said in plain words on the row by its error code, with Try again and
// Dismiss; a file over the server's limit (when it is known: the welcome's attachment_max_bytes or
// a 413 before) is refused here without a byte sent. The body is the file's raw bytes
// (POST /api/v1/rooms/{room}/attachments?name=…&peer=…; docs/api: "Files in the chat"); the 201's
// message goes into the chat at once (the same frame comes live too and is merged by its id).
// Guests share nothing (the server refuses them): no button, and a drop says why.
//
// Test hooks: [data-testid=chat-attach], chat-file (the input), chat-drop (the overlay),
// upload-row (data-state queued|uploading|failed, data-name, data-error), upload-progress (a
// <progress> 0–100), upload-status, upload-cancel, upload-retry, upload-dismiss.

import { $, h, setText, setAttrText, toast } from './common.js';
import { icon } from './icons.js';
import { applyI18n } from './i18n.js';
import * as api from './api.js';
import { passFor } from './roomaccess.js';
import { fileKind, kindIcon, nameEl } from './files.js';

const PARALLEL = 2;
/** Codes a second try cannot fix. */
const FINAL = new Set(['too_large', 'guest_upload_forbidden', 'forbidden', 'room_not_found']);

const pad = (n) => String(n).padStart(2, '0');

/** A pasted image's name: screenshot-YYYY-MM-DD-HHMMSS.png (local time). */
export function screenshotName(date = new Date(), type = 'image/png') {
  const ext = (/^image\/(png|jpeg|gif|webp|bmp)$/.exec(type)?.[1] || 'png').replace('jpeg', 'jpg');
  return `screenshot-${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}-`
    + `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}.${ext}`;
}

export class Uploads {
  /** opts: call() → {room, peerId, guest, maxBytes} or null (no call), onSent(frame), onChange() */
  constructor(opts) {
    this.o = opts;
    this.list = $('#chat-uploads');
    this.panel = $('#chat-panel');
    this.input = $('#chat-file');
    this.overlay = $('#chat-drop');
    this.queue = [];
    this.active = new Set();
    this.maxBytes = 0; // learned from a 413

    $('#chat-attach').addEventListener('click', () => this.input.click());
    this.input.addEventListener('change', () => { this.add([...this.input.files]); this.input.value = ''; });

    let depth = 0; // dragenter/dragleave pairs: leaving a child is no leaving the panel
    const files = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    this.panel.addEventListener('dragenter', (e) => { if (!files(e)) return; e.preventDefault(); depth++; this._overlay(true); });
    this.panel.addEventListener('dragover', (e) => {
      if (!files(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = this._guest() ? 'none' : 'copy';
      this._overlay(true);
    });
    this.panel.addEventListener('dragleave', (e) => { if (!files(e)) return; depth = Math.max(0, depth - 1); if (!depth) this._overlay(false); });
    this.panel.addEventListener('drop', (e) => {
      if (!files(e)) return;
      e.preventDefault(); // never let the browser open the file in place of the call
      depth = 0;
      this._overlay(false);
      this.add([...e.dataTransfer.files]);
    });
    this.panel.addEventListener('paste', (e) => this._paste(e));
    // A file dropped beside the chat (on a video) must not make the browser open it in place of
    // the call: the drop is refused there.
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (e) => {
        if (!files(e) || this.panel.contains(e.target) || !this.o.call()) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'none';
      });
    }
  }

  _guest() { return !!this.o.call()?.guest; }

  _overlay(on) {
    this.overlay.hidden = !on;
    setText(this.overlay.querySelector('p'), this._guest() ? 'file_err_guest' : 'file_drop');
  }

  /** Clipboard files (a screenshot) are sent; text on the clipboard is pasted as text. */
  _paste(e) {
    const cd = e.clipboardData;
    const files = cd ? [...cd.files] : [];
    if (!files.length || cd.getData('text/plain')) return;
    e.preventDefault();
    const now = new Date();
    this.add(files.map((f) => (f.type.startsWith('image/') && (!f.name || /^image\.\w+$/i.test(f.name))
      ? new File([f], screenshotName(now, f.type), { type: f.type, lastModified: now.getTime() }) : f)));
  }

  /** Queue files for sending (each gets its row). */
  add(files) {
    const call = this.o.call();
    if (!call || !files.length) return;
    if (call.guest) { toast('file_err_guest', null, 'alert'); return; }
    for (const file of files) {
      const job = { file, name: file.name || 'file', xhr: null, refreshed: false };
      job.row = this._row(job);
      this.list.append(job.row);
      const max = call.maxBytes || this.maxBytes;
      if (max && file.size > max) this._fail(job, { code: 'too_large', max });
      else this.queue.push(job);
    }
    this.o.onChange?.({ scroll: true });
    this._pump();
  }

  /** Stop everything (the call ended). */
  reset() {
    this.queue = [];
    for (const job of this.active) { job.cancelled = true; job.xhr?.abort(); }
    this.active.clear();
    this.list.replaceChildren();
  }

  get count() { return this.list.children.length; }

  _row(job) {
    const name = job.name;
    const args = { name };
    const btn = (testid, ic, label, onclick, hidden = false) => {
      const b = h('button', { type: 'button', class: 'icon-btn', 'data-testid': testid, hidden, onclick }, icon(ic));
      setAttrText(b, 'aria-label', label, args);
      setAttrText(b, 'title', label, args);
      b.dataset.i18nArgs = JSON.stringify(args);
      return b;
    };
    const el = {
      bar: h('progress', { class: 'upload-bar', 'data-testid': 'upload-progress', max: '100', value: '0' }),
      status: h('span', { class: 'upload-status', 'data-testid': 'upload-status', i18n: 'file_queued' }),
      cancel: btn('upload-cancel', 'close', 'file_cancel_named', () => this.cancel(job)),
      retry: btn('upload-retry', 'refresh', 'file_retry_named', () => this.retry(job), true),
      dismiss: btn('upload-dismiss', 'close', 'file_dismiss_named', () => this._drop(job), true),
    };
    setAttrText(el.bar, 'aria-label', 'file_uploading', args);
    el.bar.dataset.i18nArgs = JSON.stringify(args);
    job.el = el;
    const row = h('li', { class: 'upload', 'data-testid': 'upload-row', dataset: { state: 'queued', name, size: String(job.file.size) } },
      kindIcon(fileKind(job.file.type, name)),
      h('div', { class: 'upload-main' },
        h('div', { class: 'upload-top' },
          nameEl(name, 'upload-name'),
          h('span', { class: 'file-size', i18n: 'file_size', i18nArgs: { n: job.file.size } })),
        el.bar, el.status),
      h('div', { class: 'upload-actions' }, el.retry, el.cancel, el.dismiss));
    applyI18n(row);
    return row;
  }

  _pump() {
    while (this.active.size < PARALLEL && this.queue.length) this._send(this.queue.shift());
  }

  _send(job) {
    const call = this.o.call();
    if (!call) { this._fail(job, { code: 'not_connected' }); return; }
    const q = new URLSearchParams({ name: job.name });
    if (call.peerId) q.set('peer', call.peerId);
    const pass = passFor(call.room);
    if (pass) q.set('pass', pass);
    const xhr = new XMLHttpRequest();
    job.xhr = xhr;
    this.active.add(job);
    job.row.dataset.state = 'uploading';
    delete job.row.dataset.error;
    this._progress(job, 0, job.file.size);
    xhr.open('POST', `/api/v1/rooms/${encodeURIComponent(call.room)}/attachments?${q}`);
    const token = api.getToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', job.file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => this._progress(job, e.loaded, e.lengthComputable ? e.total : job.file.size);
    xhr.onload = () => this._loaded(job, xhr, call);
    xhr.onerror = () => { this._settle(job); this._fail(job, { code: 'network_error' }); this._pump(); };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => { this._settle(job); this._pump(); };
    xhr.send(job.file);
  }

  _progress(job, loaded, total) {
    const pct = total > 0 ? Math.min(100, (loaded / total) * 100) : 0;
    job.el.bar.value = pct;
    if (loaded > 0 && loaded >= total) setText(job.el.status, 'file_finishing'); // sent; the server checks and stores it
    else setText(job.el.status, 'file_progress', { done: loaded, total, pct: Math.floor(pct) });
  }

  _settle(job) {
    this.active.delete(job);
    job.xhr = null;
  }

  _loaded(job, xhr, call) {
    this._settle(job);
    if (job.cancelled) return;
    if (xhr.status >= 200 && xhr.status < 300) {
      let frame = null;
      try { frame = JSON.parse(xhr.responseText).message; } catch { /* the live frame brings it */ }
      this._drop(job);
      if (frame) this.o.onSent(frame);
    } else {
      let err = {};
      try { err = JSON.parse(xhr.responseText).error || {}; } catch { /* not our shape */ }
      const code = err.code || (xhr.status === 413 ? 'too_large' : `http_${xhr.status}`);
      if (xhr.status === 401 && !job.refreshed) { // the token ran out on the way: a fresh one, once
        job.refreshed = true;
        api.refreshToken().then((ok) => {
          if (!ok) return this._fail(job, { code: 'session_lost' });
          this.queue.unshift(job);
          return this._pump();
        }).catch(() => this._fail(job, { code: 'network_error' }));
        return;
      }
      if (code === 'too_large') {
        const m = /(\d{3,})\D*$/.exec(String(err.message || ''));
        if (m) this.maxBytes = Number(m[1]);
      }
      this._fail(job, { code, message: err.message, max: call.maxBytes || this.maxBytes });
    }
    this._pump();
  }

  _fail(job, { code, message = '', max = 0 }) {
    const row = job.row;
    row.dataset.state = 'failed';
    row.dataset.error = code;
    const [key, args] = errorText(code, message, max);
    setText(job.el.status, key, args);
    job.el.status.setAttribute('role', 'alert');
    job.el.cancel.hidden = true;
    job.el.retry.hidden = FINAL.has(code);
    job.el.dismiss.hidden = false;
  }

  cancel(job) {
    job.cancelled = true;
    this.queue = this.queue.filter((j) => j !== job);
    if (job.xhr) job.xhr.abort();
    this._drop(job);
  }

  retry(job) {
    job.cancelled = false;
    job.refreshed = false;
    job.row.dataset.state = 'queued';
    job.el.status.removeAttribute('role');
    setText(job.el.status, 'file_queued');
    job.el.bar.value = 0;
    job.el.cancel.hidden = false;
    job.el.retry.hidden = true;
    job.el.dismiss.hidden = true;
    this.queue.push(job);
    this._pump();
    job.el.cancel.focus();
  }

  _drop(job) {
    const next = job.row.nextElementSibling || job.row.previousElementSibling;
    const hadFocus = job.row.contains(document.activeElement);
    job.row.remove();
    if (hadFocus) (next?.querySelector('button:not([hidden])') || $('#chat-input')).focus();
    this.o.onChange?.({ scroll: false });
  }
}

/** The i18n key and its arguments that say why a file was not sent. */
export function errorText(code, message, max) {
  switch (code) {
    case 'too_large': return max ? ['file_err_too_large', { max }] : ['file_err_too_large_unknown'];
    case 'quota_exceeded':
      return /server|total|instance|disk/i.test(message) ? ['file_err_quota_server'] : ['file_err_quota_user'];
    case 'too_many_uploads': return ['file_err_too_many'];
    case 'network_error': return ['file_err_network'];
    case 'guest_upload_forbidden': return ['file_err_guest'];
    case 'size_mismatch': return ['file_err_changed'];
    case 'session_lost': return ['file_err_session'];
    case 'not_connected': return ['not_connected'];
    case 'forbidden': case 'room_not_found': case 'room_private': case 'room_password':
      return ['file_err_forbidden'];
    default: return ['file_err_other', { code }];
  }
}
