// Chat panel: messenger style (own messages right, others left with name and time), history,
// paging older messages, Enter sends / Shift+Enter new line. Text only via textContent.
// Files (#19): a message with an `attachment` shows its file card (files.js); files are sent
// from here through the uploads (attachments.js); a `chat_deleted` frame takes a message away.

import { $, h, setText, hueOf, toast } from './common.js';
import { formatTime, applyI18n } from './i18n.js';
import { request } from './api.js';
import { confirmDialog } from './dialog.js';
import { fileCard, fileApi } from './files.js';
import { Uploads } from './attachments.js';

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
const GROUP_MS = 5 * 60 * 1000;
export const CHAT_MAX = 2000;

export class ChatPanel {
  /**
   * opts: onSend(text) → bool (sent), onLoadMore(beforeId) → Promise<frames[]>, onIncoming(frame),
   * call() → {room, peerId} of the call we are in, or null
   */
  constructor(opts) {
    this.o = opts;
    this.log = $('#chat-log');
    this.scroller = $('#chat-scroll');
    this.input = $('#chat-input');
    this.more = $('#chat-more');
    this.meUserId = '';
    this.ids = new Set();
    this.loading = false;
    this.ctx = { room: '', guest: false }; // whose chat: for the files' addresses and who may delete
    this.maxBytes = 0;
    this.uploads = new Uploads({
      call: () => {
        const c = this.o.call?.();
        return c && { ...c, guest: this.ctx.guest, maxBytes: this.maxBytes };
      },
      onSent: (frame) => this.add(frame),
      onChange: ({ scroll }) => {
        this._empty();
        if (scroll) this.scroller.scrollTop = this.scroller.scrollHeight;
      },
    });

    $('#chat-form').addEventListener('submit', (e) => { e.preventDefault(); this._send(); });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this._send(); }
    });
    this.input.addEventListener('input', () => this._grow());
    this.more.addEventListener('click', () => this._loadMore());
  }

  /** A new call's chat: ours (`room`), as `guest` or not (a guest shares no files). */
  reset(meUserId, { room = '', guest = false } = {}) {
    this.meUserId = meUserId;
    this.ctx = { room, guest };
    this.maxBytes = 0;
    this.ids.clear();
    this.log.replaceChildren();
    this.uploads.reset();
    $('#chat-attach').hidden = guest;
    this.setHost(false);
    this.more.hidden = true;
    this._empty();
  }

  /** Merge frames (history or live), ordered by id, each once. */
  addMany(frames, { scroll = true } = {}) {
    let added = 0;
    for (const f of frames) {
      if (f == null || f.id == null || this.ids.has(f.id)) continue;
      this.ids.add(f.id);
      const li = this._message(f);
      let next = null;
      for (const other of this.log.children) { if (Number(other.dataset.chatId) > Number(f.id)) { next = other; break; } }
      this.log.insertBefore(li, next);
      added++;
    }
    if (added) { this._group(); this._empty(); }
    if (added && scroll) this.scroller.scrollTop = this.scroller.scrollHeight;
    return added;
  }

  /** A live frame; true if it is from someone else (for the unread badge). */
  add(frame) {
    const nearBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 120;
    const mine = frame.user_id === this.meUserId;
    const added = this.addMany([frame], { scroll: nearBottom || mine });
    return added > 0 && !mine;
  }

  /** From the welcome: whether we are a host (who may delete anyone's file). */
  setHost(host) { $('#chat-panel').dataset.host = String(!!host); }

  /** The server's largest file in bytes (0: unknown), so a bigger one is refused before sending. */
  setFileLimit(bytes) { this.maxBytes = Number(bytes) > 0 ? Number(bytes) : 0; }

  /** A message gone (its file deleted: `chat_deleted`). */
  remove(id) {
    const li = this.log.querySelector(`[data-chat-id="${CSS.escape(String(id))}"]`);
    if (!li) return false;
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    this._group();
    this._empty();
    if (hadFocus) this.input.focus();
    return true;
  }

  /** Show "load earlier" when the history we got may not be all. */
  setHasMore(more) { this.more.hidden = !more; }

  _message(f) {
    const mine = f.user_id === this.meUserId;
    const ts = new Date(f.ts);
    const time = h('time', { datetime: f.ts, dataset: { time: f.ts }, text: formatTime(ts) });
    const author = h('span', { class: 'msg-author', text: f.username });
    author.style.setProperty('--hue', hueOf(f.username));
    const meta = h('div', { class: 'msg-meta' }, mine ? null : author, time);
    const file = f.attachment && f.attachment.id;
    const bubble = file
      ? h('div', { class: 'msg-bubble msg-file' }, fileCard(f, {
        room: this.ctx.room, mine, canDelete: !this.ctx.guest, onDelete: (x) => this._delete(x),
      }))
      : h('div', { class: 'msg-bubble' }, ...linkify(String(f.text ?? '')));
    const li = h('li', {
      class: `msg ${mine ? 'mine' : 'theirs'}${file ? ' has-file' : ''}`, 'data-testid': 'chat-message',
      dataset: { chatId: String(f.id), mine: String(mine), userId: f.user_id || '', ts: String(ts.getTime() || 0) },
    }, meta, bubble);
    if (file) applyI18n(li);
    return li;
  }

  /** Delete a file (ours, or anyone's as a host) after asking; everyone's chat loses it. */
  async _delete(f) {
    const name = f.attachment.name;
    if (!(await confirmDialog({ title: 'file_delete_title', body: 'file_delete_body', ok: 'file_delete_ok', args: { name }, danger: true }))) return;
    try {
      await request(fileApi(this.ctx.room, f.attachment.id), { method: 'DELETE' });
      this.remove(f.id);
    } catch (e) {
      if (e.code === 'attachment_not_found') { this.remove(f.id); return; }
      toast(e.status === 403 ? 'file_delete_forbidden' : 'file_delete_failed', { code: e.code }, 'alert');
    }
  }

  /** Consecutive messages of one person within 5 minutes share one header. */
  _group() {
    let prev = null;
    for (const li of this.log.children) {
      const cont = prev && prev.dataset.userId === li.dataset.userId && Number(li.dataset.ts) - Number(prev.dataset.ts) < GROUP_MS;
      li.classList.toggle('cont', !!cont);
      prev = li;
    }
  }

  _empty() { $('#chat-empty').hidden = this.log.children.length > 0 || this.uploads.count > 0; }

  _grow() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
    const left = CHAT_MAX - this.input.value.length;
    const counter = $('#chat-count');
    counter.hidden = left > 200;
    counter.textContent = String(left);
  }

  _send() {
    const text = this.input.value.trim();
    if (!text) return;
    if (text.length > CHAT_MAX) { setText($('#chat-count'), 'chat_too_long'); return; }
    if (this.o.onSend(text)) {
      this.input.value = '';
      this._grow();
    }
  }

  async _loadMore() {
    if (this.loading) return;
    const first = this.log.firstElementChild;
    if (!first) return;
    this.loading = true;
    this.more.disabled = true;
    const before = this.scroller.scrollHeight - this.scroller.scrollTop;
    try {
      const frames = await this.o.onLoadMore(first.dataset.chatId);
      this.addMany(frames, { scroll: false });
      this.scroller.scrollTop = this.scroller.scrollHeight - before; // keep the view where it was
      this.setHasMore(frames.length >= 50);
    } catch {
      this.setHasMore(true);
    } finally {
      this.loading = false;
      this.more.disabled = false;
    }
  }
}

/** Text → text nodes and <a> for http(s) links (built with the DOM, never parsed as HTML). */
function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer', text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
