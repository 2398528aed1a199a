// The API reference: renders /api/openapi.json without any third-party UI (no CDN).
import { $, h } from './common.js';

const resolve = (spec, node) => {
  if (node && node.$ref) {
    return node.$ref.replace('#/', '').split('/').reduce((o, k) => o[k], spec);
  }
  return node;
};

function schemaText(spec, schema, depth = 0) {
  const s = resolve(spec, schema);
  if (!s || depth > 4) return '';
  if (s.allOf) return s.allOf.map((p) => schemaText(spec, p, depth)).join('\n');
  if (s.type === 'object' && s.properties) {
    const req = new Set(s.required || []);
    return Object.entries(s.properties)
      .map(([k, v]) => {
        const r = resolve(spec, v);
        const inner = r.type === 'object' || r.type === 'array' ? schemaText(spec, r.type === 'array' ? r.items : r, depth + 1) : '';
        const type = r.type || (r.const !== undefined ? JSON.stringify(r.const) : 'object');
        return `${'  '.repeat(depth)}${k}${req.has(k) ? '' : '?'}: ${type}${r.description ? `  — ${r.description}` : ''}${inner ? `\n${inner}` : ''}`;
      })
      .join('\n');
  }
  return `${'  '.repeat(depth)}${s.type || ''}`;
}

async function main() {
  const spec = await (await fetch('/api/openapi.json')).json();
  $('#docs-intro').textContent = spec.info.description;
  const root = $('#docs');
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of ['get', 'post', 'put', 'delete', 'patch']) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op, params: [...(item.parameters || []), ...(op.parameters || [])] });
    }
  }
  for (const [tag, ops] of byTag) {
    root.append(h('h2', { class: 'docs-tag' }, tag));
    for (const { path, method, op, params } of ops) {
      const body = h('div', { class: 'docs-body' });
      if (op.description) body.append(h('p', {}, op.description));
      if (op.security) {
        const query = op.security.some((s) => s.token_query);
        body.append(h('p', {}, query ? 'Needs Authorization: Bearer <token>, or ?token=<token>.' : 'Needs Authorization: Bearer <token>.'));
      }
      if (params.length) {
        const rows = params.map((p) => h('tr', {}, h('td', {}, `${p.name} (${p.in})`), h('td', {}, p.description || '')));
        body.append(h('table', {}, ...rows));
      }
      const request = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
      if (request) body.append(h('p', {}, 'Body (JSON):'), h('pre', {}, schemaText(spec, request.schema)));
      else if (op.requestBody) body.append(h('p', {}, `Body (${Object.keys(op.requestBody.content || {}).join(', ')}): ${op.requestBody.description || ''}`));
      const rows = Object.entries(op.responses).map(([code, r]) => {
        // A reference's own description (OpenAPI 3.1) says more than the shared one.
        const text = r.description || resolve(spec, r).description || '';
        const headers = Object.entries(r.headers || {}).map(([name, header]) => `${name}: ${header.description || ''}`);
        return h('tr', {}, h('td', {}, code), h('td', {}, text, headers.length ? h('pre', {}, headers.join('\n')) : null));
      });
      body.append(h('table', {}, ...rows));
      root.append(h('details', { class: 'docs-op', 'data-op': `${method.toUpperCase()} ${path}` },
        h('summary', {}, h('span', { class: `docs-method ${method}` }, method.toUpperCase()), h('span', { class: 'docs-path' }, path), h('span', { class: 'docs-summary' }, op.summary || '')),
        body));
    }
  }
  document.body.dataset.ready = 'true';
}

main();
