// REST client: one fetch wrapper, the API's error shape, the token in localStorage and its refresh.

import { passFor } from './roomaccess.js';

export const TOKEN_KEY = 'webcall.token';
export const TOKEN_EXP_KEY = 'webcall.token_exp'; // ms since epoch, from expires_in at issue time

/** The API's error shape `{"error": {code, message, field}}`, plus the HTTP status and Retry-After. */
export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message || code);
    this.status = status;       // 0 = network failure
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter; // seconds, from Retry-After
  }
}

let guestToken = null;
/** A guest (invite link, invites.js) calls with its guest token: never stored here, never refreshed. */
export function useGuestToken(token) { guestToken = token; }
export const isGuest = () => !!guestToken;

export const getToken = () => guestToken || localStorage.getItem(TOKEN_KEY);

export function setToken(token, expiresIn) {
  localStorage.setItem(TOKEN_KEY, token);
  const secs = Number(expiresIn) || jwtLifetime(token);
  if (secs) localStorage.setItem(TOKEN_EXP_KEY, String(Date.now() + secs * 1000));
  else localStorage.removeItem(TOKEN_EXP_KEY);
  scheduleRefresh();
}

export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_EXP_KEY);
  clearTimeout(refreshTimer);
}

function jwtPayload(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '=')));
  } catch { return null; }
}

function jwtLifetime(token) {
  const p = jwtPayload(token);
  return p && p.exp && p.iat ? p.exp - p.iat : 0;
}

/** When the token expires (ms since epoch), or 0 if unknown. */
export function tokenExpiresAt() {
  const stored = Number(localStorage.getItem(TOKEN_EXP_KEY));
  if (stored) return stored;
  const p = getToken() && jwtPayload(getToken());
  return p && p.exp ? p.exp * 1000 : 0;
}

/** fetch + JSON + the error shape. Throws ApiError; returns the parsed body (null for 204). */
export async function request(path, { method = 'GET', body, auth = true, signal } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const token = auth && getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', String(e.message || e));
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { /* not JSON */ } }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const retry = Number(res.headers.get('retry-after'));
    throw new ApiError(res.status, err.code || `http_${res.status}`, err.message || res.statusText,
      err.field, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  }
  return data;
}

// ---- endpoints ----
export const register = (email, username, password, secret) =>
  request('/api/v1/auth/register', { method: 'POST', auth: false, body: { email, username, password, secret } });

/** Log in with an email (contains "@") or a username; stores the token. */
export async function login(id, password) {
  const body = id.includes('@') ? { email: id, password } : { username: id, password };
  const data = await request('/api/v1/auth/login', { method: 'POST', auth: false, body });
  setToken(data.access_token, data.expires_in);
  return data;
}

export const me = () => request('/api/v1/auth/me');
export const iceServers = () => request('/api/v1/webrtc/ice-servers');
/** A page of rooms by name: {rooms, next_cursor} (next_cursor null on the last page). */
export const listRooms = (signal, cursor = null, limit = 50) =>
  request(`/api/v1/rooms?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal });
export const createRoom = (name) => request('/api/v1/rooms', { method: 'POST', body: { name } });
export const getRoom = (name, signal) => request(`/api/v1/rooms/${encodeURIComponent(name)}`, { signal });
export const deleteRoom = (name) => request(`/api/v1/rooms/${encodeURIComponent(name)}`, { method: 'DELETE' });
export const roomMessages = (room, before, limit = 50) => {
  const pass = passFor(room); // a room with a password: its room pass
  return request(`/api/v1/rooms/${encodeURIComponent(room)}/messages?before=${encodeURIComponent(before)}&limit=${limit}${pass ? `&pass=${encodeURIComponent(pass)}` : ''}`);
};

/** Revoke the token on the server (best effort) and forget it here. */
export async function logout() {
  try { if (getToken()) await request('/api/v1/auth/logout', { method: 'POST' }); } catch { /* forget anyway */ }
  clearToken();
}

// ---- refresh before expiry ----
let refreshTimer = 0;
let refreshing = null;
const lostHandlers = new Set();

/** Called once when the session is gone for good (refresh refused, token revoked, logged out elsewhere). */
export function onSessionLost(cb) { lostHandlers.add(cb); }
function sessionLost() { for (const cb of lostHandlers) cb(); }

/** Get a fresh token now. Resolves true on success, false when the session is gone; throws on network failure.
 *  A refresh revokes the token it presents, and presenting it again revokes the whole session: tabs
 *  take turns (Web Locks), and a tab that finds the token already replaced by another uses that one. */
export function refreshToken() {
  if (guestToken) return Promise.resolve(false); // a guest pass is not refreshed: the call ends
  if (!refreshing) {
    const presented = getToken();
    const run = async () => {
      const current = getToken();
      if (current && current !== presented) return true;
      const data = await request('/api/v1/auth/refresh', { method: 'POST' });
      setToken(data.access_token, data.expires_in);
      return true;
    };
    refreshing = (async () => {
      try {
        return await (navigator.locks ? navigator.locks.request('webcall.token-refresh', run) : run());
      } catch (e) {
        if (e.status === 401) { clearToken(); sessionLost(); return false; }
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(scheduleRefresh, 15000); // offline: try again soon
        throw e;
      } finally { refreshing = null; }
    })();
  }
  return refreshing;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!started || !getToken()) return;
  const exp = tokenExpiresAt();
  if (!exp) return;
  const life = exp - Date.now();
  // Refresh 20% before expiry, at least 10 s and at most 5 min ahead.
  const lead = Math.min(300_000, Math.max(10_000, life * 0.2));
  const delay = Math.max(0, life - lead);
  refreshTimer = setTimeout(() => refreshToken().catch(() => {}), Math.min(delay, 2 ** 31 - 1));
}

let started = false;
/** Keep the token fresh for as long as the page lives. */
export function startTokenRefresh() {
  if (started) return;
  started = true;
  scheduleRefresh();
  // Timers sleep with the laptop: re-check when we come back.
  document.addEventListener('visibilitychange', () => { if (!document.hidden) scheduleRefresh(); });
  window.addEventListener('online', scheduleRefresh);
  // Another tab refreshed or logged out.
  window.addEventListener('storage', (e) => {
    if (e.key !== TOKEN_KEY && e.key !== TOKEN_EXP_KEY) return;
    if (!getToken()) sessionLost(); else scheduleRefresh();
  });
}

/** Is the stored token still accepted? 'ok' | 'invalid' | 'unreachable'. */
export async function checkToken() {
  try { await (guestToken ? iceServers() : me()); return 'ok'; } catch (e) {
    if (e.status === 401 || e.code === 'banned') return 'invalid';
    return 'unreachable';
  }
}
