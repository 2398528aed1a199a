// The connection check (/check): in the user's own browser, gather ICE candidates
// against our STUN server, our TURN relay over UDP, over TCP and over TLS, and say
// in plain words what will work from this network. The raw candidates are folded below.
import * as api from './api.js';
import { $, initPage } from './common.js';
import { t, onLangChange } from './i18n.js';

initPage();

if (!api.getToken()) {
  location.replace(`/static/auth.html?next=${encodeURIComponent('/check')}`);
}

const GATHER_MS = 8000;

/** Candidates the browser gathers with `config` (8 s at most). */
async function gather(config) {
  const pc = new RTCPeerConnection(config);
  const found = [];
  try {
    pc.createDataChannel('check');
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHER_MS);
      pc.addEventListener('icecandidate', (e) => {
        if (!e.candidate) { clearTimeout(timer); resolve(); return; }
        if (!e.candidate.candidate) return;
        found.push({
          type: e.candidate.type,
          protocol: e.candidate.protocol,
          address: e.candidate.address,
          port: e.candidate.port,
          relayProtocol: e.candidate.relayProtocol || null,
          url: e.candidate.url || null,
        });
      });
    });
    await pc.setLocalDescription(await pc.createOffer());
    await done;
  } finally {
    pc.close();
  }
  return found;
}

/** Splits the server's ice servers into STUN, and TURN over UDP, TCP and TLS. */
function split(ice) {
  const stun = [], udp = [], tcp = [], tls = [];
  for (const server of ice.iceServers || []) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    for (const url of urls) {
      const turn = { urls: url, username: server.username, credential: server.credential };
      if (url.startsWith('stun:')) stun.push({ urls: url });
      else if (url.startsWith('turns:')) tls.push(turn);
      else if (url.startsWith('turn:') && url.includes('transport=tcp')) tcp.push(turn);
      else if (url.startsWith('turn:')) udp.push(turn);
    }
  }
  return { stun, udp, tcp, tls };
}

const CHECKS = ['direct', 'udp', 'tcp', 'tls'];
const results = {};

function show(id, state, key, args) {
  const item = $(`[data-testid="check-${id}"]`);
  item.dataset.state = state;
  const verdict = $('.check-verdict', item);
  verdict.dataset.i18n = key;
  verdict.dataset.i18nArgs = JSON.stringify(args || {});
  verdict.textContent = t(key, args);
  results[id] = state;
}

function summarize() {
  const el = $('[data-testid="check-summary"]');
  let key;
  if (results.udp === 'ok') key = results.direct === 'ok' ? 'check_sum_all' : 'check_sum_relay';
  else if (results.tcp === 'ok') key = 'check_sum_tcp_only';
  else if (results.tls === 'ok') key = 'check_sum_tls_only';
  else key = results.direct === 'ok' ? 'check_sum_direct_only' : 'check_sum_none';
  el.dataset.i18n = key;
  el.textContent = t(key);
}

async function run() {
  for (const id of CHECKS) show(id, 'running', 'check_running');
  $('[data-testid="check-summary"]').textContent = '';
  const raw = {};
  let ice;
  try {
    ice = await api.iceServers();
  } catch (err) {
    for (const id of CHECKS) show(id, 'fail', 'check_no_servers');
    $('[data-testid="check-raw"]').textContent = String(err && err.message || err);
    return;
  }
  const { stun, udp, tcp, tls } = split(ice);
  const relayed = (c) => c.filter((x) => x.type === 'relay');
  const checks = [
    ['direct', { iceServers: stun }, (c) => c.filter((x) => x.type === 'srflx')],
    ['udp', { iceServers: udp, iceTransportPolicy: 'relay' }, relayed],
    ['tcp', { iceServers: tcp, iceTransportPolicy: 'relay' }, relayed],
    ['tls', { iceServers: tls, iceTransportPolicy: 'relay' }, relayed],
  ];
  await Promise.all(checks.map(async ([id, config, pick]) => {
    if (!config.iceServers.length) { show(id, 'warn', 'check_not_offered'); return; }
    try {
      const candidates = await gather(config);
      raw[id] = { servers: config.iceServers.map((s) => s.urls), candidates };
      const hits = pick(candidates);
      if (hits.length) {
        const where = `${hits[0].address}:${hits[0].port}`;
        show(id, 'ok', id === 'direct' ? 'check_direct_ok' : 'check_relay_ok', { where });
      } else if (id === 'direct' && candidates.some((x) => x.type === 'host')) {
        show(id, 'warn', 'check_direct_host_only');
      } else {
        show(id, 'fail', id === 'direct' ? 'check_direct_fail' : `check_${id}_fail`);
      }
    } catch (err) {
      raw[id] = { error: String(err) };
      show(id, 'fail', 'check_error');
    }
  }));
  summarize();
  $('[data-testid="check-raw"]').textContent = JSON.stringify(raw, null, 2);
  document.body.dataset.checked = 'true';
}

$('#check-again').addEventListener('click', () => { document.body.dataset.checked = 'false'; run(); });
onLangChange(() => { if (document.body.dataset.checked === 'true') summarize(); });
run();
