// Recording a call, in the web client (docs/protocol.md "Recording"). A host starts and stops it
// from their bar in the participant list (only where the server can route calls: recording needs
// the media on the server). While it runs everyone sees a red REC mark in the top bar with who
// started it; when it starts (or when we join a call that is being recorded) everyone else is
// told in a dialog that must be answered: stay (consent) or leave the call. A host lists the
// room's recordings ("Recordings", beside "Room access") and downloads their files.
//
// Test hooks: rec-mark, record-toggle, rec-consent, rec-ack, rec-leave, recordings-open,
// recordings-dialog, recording (a row, data-id), recording-file (a download link, data-name),
// recording-delete, recordings-close.

import { $, h, setText, setAttrText, toast } from './common.js';
import { icon } from './icons.js';
import * as api from './api.js';
import { confirmDialog } from './dialog.js';
import { formatBytes, formatTime } from './i18n.js';

const roomPath = (room, tail = '') => `/api/v1/rooms/${encodeURIComponent(room)}/recordings${tail}`;

export class Recording {
  /** session: the CallSession (its sig, ui, mod, routes, room, peerId). */
  constructor(session) {
    this.s = session;
    this.active = null; // {id, by, username, started_at} while a recording runs
    this.host = false;
    this.available = false;
    this.markText = h('span', { class: 'rec-name wide-only' });
    this.mark = h('span', { class: 'rec-mark', 'data-testid': 'rec-mark', role: 'status' },
      h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), h('span', { class: 'rec-label', text: 'REC' }), this.markText);
    this.mark.hidden = true;
    $('#conn-status').before(this.mark);
    this.toggle = h('button', { type: 'button', class: 'btn btn-small btn-ghost rec-toggle', 'data-testid': 'record-toggle',
      onclick: () => this._toggle() }, icon('record'), h('span', { class: 'rec-toggle-text', i18n: 'rec_start' }));
    this.toggle.hidden = true;
    session.mod.bar.append(this.toggle);
    this.listButton = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'recordings-open',
      onclick: () => this.list() }, icon('record'), h('span', { i18n: 'rec_list' }));
    this.listButton.hidden = true;
    session.access.open.after(this.listButton);
    this.consent = null;
  }

  welcome(f) {
    this.host = !!f.host;
    this.available = !!f.sfu_available;
    this.listButton.hidden = !this.host;
    const was = this.active?.id;
    this._set(f.recording && f.recording.id ? f.recording : null);
    if (this.active && this.active.id !== was) this._tell(this.active);
    if (!this.active) this._closeConsent();
  }

  /** A `recording` frame; true when it was one. */
  frame(f) {
    if (f.type !== 'recording') return false;
    if (f.active) {
      const fresh = this.active?.id !== f.id;
      this._set({ id: f.id, by: f.by, username: f.username, started_at: f.started_at });
      if (fresh) this._tell(this.active);
    } else if (this.active) {
      this._set(null);
      this._closeConsent();
      toast('rec_stopped', null, 'record');
    }
    return true;
  }

  error(f) {
    if (f.code === 'not_recording') { this._set(null); return true; }
    return false;
  }

  close() {
    this._set(null);
    this._closeConsent();
    this.toggle.hidden = true;
    this.listButton.hidden = true;
  }

  _set(rec) {
    this.active = rec;
    this.mark.hidden = !rec;
    document.body.classList.toggle('recording', !!rec);
    if (rec) {
      setText(this.markText, 'rec_by', { name: rec.username || '' });
      setAttrText(this.mark, 'title', 'rec_mark_title', { name: rec.username || '' });
      setAttrText(this.mark, 'aria-label', 'rec_mark_title', { name: rec.username || '' });
    }
    this.toggle.hidden = !(this.host && this.available);
    this.toggle.dataset.active = String(!!rec);
    // A recording needs the call routed: "Back to peer-to-peer" waits until it stops (says why).
    const back = this.s.routes.toggle;
    back.disabled = !!rec;
    if (rec) setAttrText(back, 'title', 'err_recording_running'); else { back.removeAttribute('title'); delete back.dataset.i18nTitle; }
    setText(this.toggle.querySelector('.rec-toggle-text'), rec ? 'rec_stop' : 'rec_start');
  }

  async _toggle() {
    if (this.active) { this.s.sig.send({ type: 'recording', action: 'stop' }); return; }
    const yes = await confirmDialog({ title: 'rec_confirm_title', body: 'rec_confirm_body', ok: 'rec_start' });
    if (yes && !this.s.ended) this.s.sig.send({ type: 'recording', action: 'start' });
  }

  /** Recording started: who started it is told in passing; everyone else must answer. */
  _tell(rec) {
    if (rec.by && rec.by === this.s.peerId) { toast('rec_started_you', null, 'record'); return; }
    this._closeConsent();
    const ack = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'rec-ack', i18n: 'rec_stay' });
    const leave = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'rec-leave', i18n: 'rec_leave' });
    const dlg = h('dialog', { class: 'confirm rec-consent', 'data-testid': 'rec-consent', 'aria-labelledby': 'rec-consent-title', 'aria-describedby': 'rec-consent-body' },
      h('div', { class: 'confirm-box' },
        h('h2', { id: 'rec-consent-title', class: 'confirm-title' }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), h('span', { i18n: 'rec_consent_title' })),
        h('p', { id: 'rec-consent-body', class: 'confirm-body', i18n: 'rec_consent_body', i18nArgs: { name: rec.username || '' } }),
        h('div', { class: 'confirm-actions' }, leave, ack)));
    dlg.addEventListener('cancel', (e) => e.preventDefault()); // Esc is no answer: stay or leave
    dlg.addEventListener('keydown', (e) => e.stopPropagation()); // no call shortcut behind it
    ack.addEventListener('click', () => this._closeConsent());
    leave.addEventListener('click', () => { this._closeConsent(); this.s.leave('left'); });
    document.body.append(dlg);
    this.consent = dlg;
    dlg.showModal();
    ack.focus();
  }

  _closeConsent() {
    const dlg = this.consent;
    this.consent = null;
    if (!dlg) return;
    if (dlg.open) dlg.close();
    dlg.remove();
  }

  /** The room's recordings (hosts): when, who, how long, and each file to download. */
  async list() {
    const room = this.s.room;
    const body = h('div', { class: 'rec-list', 'aria-live': 'polite' }, h('p', { class: 'muted', i18n: 'rec_loading' }));
    const close = h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'recordings-close', i18n: 'close' });
    const dlg = h('dialog', { class: 'confirm rec-dialog', 'data-testid': 'recordings-dialog', 'aria-labelledby': 'rec-list-title' },
      h('div', { class: 'confirm-box' },
        h('h2', { id: 'rec-list-title', class: 'confirm-title', i18n: 'rec_list' }),
        h('p', { class: 'muted rec-note', i18n: 'rec_list_note' }),
        body,
        h('div', { class: 'confirm-actions' }, close)));
    close.addEventListener('click', () => dlg.close());
    dlg.addEventListener('keydown', (e) => e.stopPropagation());
    dlg.addEventListener('close', () => dlg.remove());
    dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); });
    document.body.append(dlg);
    dlg.showModal();
    const render = async () => {
      let got;
      try { got = await api.request(roomPath(room)); } catch (e) {
        body.replaceChildren(h('p', { class: 'rec-error', i18n: e.status === 403 ? 'err_not_room_owner' : 'err_server', i18nArgs: { code: e.code || e.status || '' } }));
        return;
      }
      const recs = got.recordings || [];
      if (!recs.length) { body.replaceChildren(h('p', { class: 'muted', 'data-testid': 'recordings-empty', i18n: 'rec_none' })); return; }
      body.replaceChildren(h('ul', { class: 'rec-items' }, recs.map((r) => this._row(room, r, render))));
    };
    render();
  }

  _row(room, r, render) {
    const started = new Date(r.started_at);
    const ended = r.ended_at ? new Date(r.ended_at) : null;
    const when = h('span', { class: 'rec-when', 'data-time': r.started_at, text: formatTime(started) });
    const how = ended
      ? h('span', { class: 'muted', i18n: 'rec_length', i18nArgs: { time: clock(ended - started) } })
      : h('span', { class: 'rec-running', i18n: this.active?.id === r.id ? 'rec_running' : 'rec_unfinished' });
    const del = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'recording-delete', onclick: async () => {
      if (!(await confirmDialog({ title: 'rec_delete_title', body: 'rec_delete_body', ok: 'rec_delete', danger: true }))) return;
      try { await api.request(roomPath(room, `/${r.id}`), { method: 'DELETE' }); render(); } catch { toast('err_server', { code: 'delete' }, 'alert'); }
    } }, icon('trash'));
    setAttrText(del, 'aria-label', 'rec_delete');
    setAttrText(del, 'title', 'rec_delete');
    const files = (r.files || []).map((f) => {
      const link = h('a', { class: 'rec-file', 'data-testid': 'recording-file', 'data-name': f.name, download: f.name, href: fileUrl(room, r.id, f.name) },
        icon('download'), h('span', { class: 'rec-file-name', text: f.name }), h('span', { class: 'muted', text: formatBytes(f.bytes) }));
      link.addEventListener('click', () => { link.href = fileUrl(room, r.id, f.name); }); // the token of now
      return h('li', {}, link);
    });
    return h('li', { class: 'rec-item', 'data-testid': 'recording', 'data-id': r.id },
      h('div', { class: 'rec-head' }, icon('record'), when,
        h('span', { class: 'muted', i18n: 'rec_started_by', i18nArgs: { name: r.started_by || '' } }), how, del),
      files.length ? h('ul', { class: 'rec-files' }, files) : h('p', { class: 'muted', i18n: 'rec_no_files' }));
  }
}

/** A recording's file to download (the token in the query: a plain link cannot send a header). */
export function fileUrl(room, id, name) {
  return `${roomPath(room, `/${encodeURIComponent(id)}/files/${encodeURIComponent(name)}`)}?token=${encodeURIComponent(api.getToken() || '')}`;
}

/** 0:07, 12:34, 1:02:03. */
function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}
