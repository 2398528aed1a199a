// A file in the chat (#19): the message of a shared file (`attachment` in a chat frame) as the
// chat shows it, and what the upload rows share with it (kind of file, its icon, its addresses).
//
// An image with a preview shows the preview (`<img>` sized from the frame, so the log does not
// jump when it loads); a click on it downloads the file. Every file shows an icon by kind, its
// name (ellipsized, the full name in the tooltip), its size in the user's language and a
// Download link. The sender sees Delete; a host sees it on everyone's files (the chat panel's
// data-host says whether we are one). Text only via textContent: a file name is user data.
//
// Test hooks: [data-testid=file-card] (data-file-id, data-name, data-size, data-type, data-kind),
// file-preview (the <img>), file-name, file-size, file-download, file-delete.

import { h } from './common.js';
import { icon } from './icons.js';
import { getToken } from './api.js';
import { passFor } from './roomaccess.js';

const KIND_ICON = {
  image: 'fileImage', pdf: 'filePdf', archive: 'fileArchive', audio: 'fileAudio',
  video: 'fileVideo', text: 'fileText', file: 'file',
};
const ARCHIVE_TYPES = /(zip|x-tar|gzip|x-7z|rar|x-bzip|x-xz|zstd|x-compress|java-archive)/;
const TEXT_TYPES = /^(application\/(json|xml|x-yaml|yaml|javascript|x-sh|sql|toml)|text\/)/;
const EXT = [
  ['image', /\.(png|jpe?g|gif|webp|bmp|svg|heic|avif|tiff?)$/i],
  ['pdf', /\.pdf$/i],
  ['archive', /\.(zip|tar|t?gz|tgz|bz2|xz|zst|7z|rar|jar)$/i],
  ['audio', /\.(mp3|wav|ogg|oga|opus|m4a|flac|aac)$/i],
  ['video', /\.(mp4|m4v|webm|mov|mkv|avi)$/i],
  ['text', /\.(txt|log|md|csv|json|ya?ml|toml|xml|ini|conf|sh|py|rs|js|ts|c|h|go|java|sql)$/i],
];

/** 'image' | 'pdf' | 'archive' | 'audio' | 'video' | 'text' | 'file', from the declared type, then the name. */
export function fileKind(type, name = '') {
  const t = String(type || '').toLowerCase().split(';')[0].trim();
  if (t.startsWith('image/')) return 'image';
  if (t === 'application/pdf') return 'pdf';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('video/')) return 'video';
  if (ARCHIVE_TYPES.test(t)) return 'archive';
  if (TEXT_TYPES.test(t)) return 'text';
  for (const [kind, re] of EXT) if (re.test(name)) return kind;
  return 'file';
}

/** A name as its stem and its extension (".pdf", ".tar.gz"), so a long name is cut in the middle. */
export function splitName(name) {
  const m = /^(.+?)((\.tar)?\.[A-Za-z0-9]{1,8})$/.exec(name);
  return m ? [m[1], m[2]] : [name, ''];
}

/** The name's element: ellipsized before the extension, the whole name in the tooltip. */
export function nameEl(name, testid) {
  const [stem, ext] = splitName(name);
  return h('span', { class: 'file-name', 'data-testid': testid, title: name, dir: 'auto' },
    h('span', { class: 'file-stem', text: stem }), ext ? h('span', { class: 'file-ext', text: ext }) : null);
}

/** The icon of a file's kind. */
export const kindIcon = (kind) => icon(KIND_ICON[kind] || 'file', `file-icon file-icon-${kind}`);

const base = (room, id) => `/api/v1/rooms/${encodeURIComponent(room)}/attachments/${encodeURIComponent(id)}`;

/** A file's (or its preview's) address with the token in the query, as <img src> and links need. */
export function fileUrl(room, id, { thumbnail = false } = {}) {
  const q = new URLSearchParams();
  const token = getToken();
  if (token) q.set('token', token);
  const pass = passFor(room);
  if (pass) q.set('pass', pass);
  return `${base(room, id)}${thumbnail ? '/thumbnail' : ''}?${q}`;
}

/** The API address of a file, for DELETE. */
export const fileApi = base;

/**
 * The bubble's content for a file message. `f`: the chat frame; ctx: {room, mine, canDelete,
 * onDelete(frame)} — canDelete false (a guest) shows no Delete at all.
 */
export function fileCard(f, ctx) {
  const a = f.attachment;
  const name = String(a.name || '');
  const size = Number(a.size) || 0;
  const kind = fileKind(a.type, name);
  const fresh = (el, opts) => { el.href = fileUrl(ctx.room, a.id, opts); }; // the token of now, at the click
  const children = [];

  const th = a.thumbnail;
  if (th && Number(th.width) > 0 && Number(th.height) > 0) {
    const img = h('img', {
      class: 'file-preview', 'data-testid': 'file-preview', alt: name, loading: 'lazy', decoding: 'async',
      width: String(th.width), height: String(th.height), src: fileUrl(ctx.room, a.id, { thumbnail: true }),
      draggable: 'false',
    });
    // A lazy preview loads when scrolled to, maybe after the token in its address was replaced
    // (a refresh revokes the old one): once more with the token of now, then give up on it.
    img.addEventListener('error', () => {
      const now = fileUrl(ctx.room, a.id, { thumbnail: true });
      if (!img.dataset.retried && now !== img.getAttribute('src')) { img.dataset.retried = '1'; img.src = now; return; }
      img.closest('.file-thumb')?.classList.add('broken');
    });
    const link = h('a', {
      class: 'file-thumb', href: fileUrl(ctx.room, a.id), download: name, title: name, tabindex: '-1',
      onclick: (e) => fresh(e.currentTarget),
    }, img);
    children.push(link);
  }

  const download = h('a', {
    class: 'file-download icon-btn', 'data-testid': 'file-download', href: fileUrl(ctx.room, a.id), download: name,
    'data-i18n-aria-label': 'file_download_named', 'data-i18n-title': 'file_download_named',
    'data-i18n-args': JSON.stringify({ name }), onclick: (e) => fresh(e.currentTarget),
  }, icon('download'));
  const row = h('div', { class: 'file-row' },
    kindIcon(kind),
    h('div', { class: 'file-text' },
      nameEl(name, 'file-name'),
      h('span', { class: 'file-size', 'data-testid': 'file-size', i18n: 'file_size', i18nArgs: { n: size } })),
    download);
  if (ctx.canDelete) {
    const del = h('button', {
      type: 'button', class: `file-delete icon-btn${ctx.mine ? '' : ' host-only'}`, 'data-testid': 'file-delete',
      'data-i18n-aria-label': 'file_delete_named', 'data-i18n-title': 'file_delete_named',
      'data-i18n-args': JSON.stringify({ name }), onclick: () => ctx.onDelete(f),
    }, icon('trash'));
    row.append(del);
  }
  children.push(row);
  return h('div', {
    class: `file-card file-${kind}`, 'data-testid': 'file-card',
    dataset: { fileId: String(a.id), name, size: String(size), type: String(a.type || ''), kind },
  }, ...children);
}
