// The admin REST API (/api/v1/admin/…), as the panel calls it. Every call throws the
// ApiError of ../api.js (status, code, the server's message, Retry-After).

import { request } from '../api.js';

const enc = encodeURIComponent;

/** `?limit=…&cursor=…&q=…` without the empty ones. */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const PAGE = 50;

// ---- users ----
export const users = ({ q, cursor, limit = PAGE }, signal) =>
  request(`/api/v1/admin/users${query({ q, cursor, limit })}`, { signal });
export const ban = (id) => request(`/api/v1/admin/users/${enc(id)}/ban`, { method: 'POST' });
export const unban = (id) => request(`/api/v1/admin/users/${enc(id)}/unban`, { method: 'POST' });
export const setRole = (id, role) => request(`/api/v1/admin/users/${enc(id)}/role`, { method: 'PUT', body: { role } });
export const deleteUser = (id) => request(`/api/v1/admin/users/${enc(id)}`, { method: 'DELETE' });
/** A one-time password-reset link: {url, expires_at}. */
export const resetLink = (id) => request(`/api/v1/admin/users/${enc(id)}/password-reset`, { method: 'POST' });

// ---- rooms ----
export const rooms = ({ cursor, limit = PAGE }, signal) =>
  request(`/api/v1/admin/rooms${query({ cursor, limit })}`, { signal });
export const endRoom = (name) => request(`/api/v1/admin/rooms/${enc(name)}/end`, { method: 'POST' });
export const deleteRoom = (name) => request(`/api/v1/admin/rooms/${enc(name)}`, { method: 'DELETE' });
export const lockRoom = (name, locked) => request(`/api/v1/admin/rooms/${enc(name)}/lock`, { method: 'PUT', body: { locked } });
export const setOwner = (name, userId) => request(`/api/v1/admin/rooms/${enc(name)}/owner`, { method: 'PUT', body: { user_id: userId } });

// ---- live calls, audit ----
export const calls = (signal) => request('/api/v1/admin/calls', { signal });
export const audit = ({ cursor, limit = PAGE }, signal) =>
  request(`/api/v1/admin/audit${query({ cursor, limit })}`, { signal });

// ---- TURN and keys ----
export const allocations = (signal) => request('/api/v1/admin/turn/allocations', { signal });
export const endAllocation = (id) => request(`/api/v1/admin/turn/allocations/${enc(id)}`, { method: 'DELETE' });
export const quotas = (signal) => request('/api/v1/admin/turn/quotas', { signal });
export const setQuotas = (body) => request('/api/v1/admin/turn/quotas', { method: 'PUT', body });
export const keys = (signal) => request('/api/v1/admin/keys', { signal });
/** which: 'turn' | 'jwt'; answers that key's new state. */
export const rotateKey = (which) => request(`/api/v1/admin/keys/${enc(which)}/rotate`, { method: 'POST' });
