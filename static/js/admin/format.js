// Numbers an admin reads at a glance: byte counts, bit rates, ages and dates, in the page's
// language ("1.2 MB" / "1,2 МБ", "3 h 5 min" / "3 ч 5 мин").

import { getLang } from '../i18n.js';

const UNITS = {
  en: { bytes: ['B', 'KB', 'MB', 'GB', 'TB'], bits: ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'], d: 'd', h: 'h', min: 'min', s: 's' },
  ru: { bytes: ['Б', 'КБ', 'МБ', 'ГБ', 'ТБ'], bits: ['бит/с', 'кбит/с', 'Мбит/с', 'Гбит/с'], d: 'д', h: 'ч', min: 'мин', s: 'с' },
};
const units = () => UNITS[getLang()] || UNITS.en;

/** `n` scaled by 1000 into the largest unit that keeps it ≥ 1, one decimal under 10. */
function scaled(n, names) {
  let v = Math.max(0, Number(n) || 0);
  let i = 0;
  while (v >= 1000 && i < names.length - 1) { v /= 1000; i += 1; }
  const digits = i > 0 && v < 10 ? 1 : 0;
  const num = new Intl.NumberFormat(getLang(), { maximumFractionDigits: digits }).format(v);
  return `${num} ${names[i]}`;
}

/** A byte count: "0 B", "834 KB", "1.2 GB". */
export const bytes = (n) => scaled(n, units().bytes);

/** A rate in bits per second: "0 bit/s", "1.2 Mbit/s". */
export const bitrate = (bps) => scaled(bps, units().bits);

/** A whole number with the language's grouping: "12,345" / "12 345". */
export const count = (n) => new Intl.NumberFormat(getLang()).format(Number(n) || 0);

/** An age in seconds, two units at most: "45 s", "3 min 5 s", "2 h 10 min", "4 d 3 h". */
export function age(seconds) {
  const u = units();
  let s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [[d, u.d], [h, u.h], [m, u.min], [s, u.s]];
  const first = parts.findIndex(([v]) => v > 0);
  if (first < 0) return `0 ${u.s}`;
  return parts.slice(first, first + 2).filter(([v], i) => i === 0 || v > 0).map(([v, n]) => `${v} ${n}`).join(' ');
}

/** An RFC 3339 time as a date and time ("7 Dec 2026, 09:14"); '' when missing or invalid. */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/** An RFC 3339 time as a date only ("7 Dec 2026"). */
export function day(iso) {
  const date = new Date(iso || NaN);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { dateStyle: 'medium' }).format(date);
}

/** Just the clock time, seconds included ("09:14:05"). */
export const clock = (date = new Date()) =>
  new Intl.DateTimeFormat(getLang(), { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
