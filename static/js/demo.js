// Demo mode, for screenshots and design work without a server: index.html?demo=call (or 1),
// ?demo=lobby and ?demo=prejoin, optional &peers=N (1–15), &present=1 (someone shares a screen),
// &view=speaker. Loaded only on loopback hosts (see app.js); no network.

import { $, h, hueOf, initials } from './common.js';
import { showReaction } from './reactions.js';
import { showQuality } from './quality.js';
import { showLeft } from './feedback.js';

const NAMES = ['grace', 'linus', 'margaret', 'alan', 'katherine', 'dennis', 'barbara', 'edsger',
  'niklaus', 'frances', 'ken', 'radia', 'bjarne', 'hedy', 'guido'];

/** A fake camera: a soft room, a person-shaped silhouette that breathes a little. */
function fakeCamera(name, w = 640, hgt = 360) {
  const c = document.createElement('canvas');
  c.width = w; c.height = hgt;
  const ctx = c.getContext('2d');
  const hue = hueOf(name);
  let t0 = performance.now();
  const draw = () => {
    const t = (performance.now() - t0) / 1000;
    const g = ctx.createLinearGradient(0, 0, w, hgt);
    g.addColorStop(0, `hsl(${hue - 20} 35% 22%)`);
    g.addColorStop(1, `hsl(${hue + 30} 45% 12%)`);
    ctx.fillStyle = g; ctx.fillRect(0, 0, w, hgt);
    ctx.fillStyle = `hsl(${hue} 30% 30% / .5)`; // a window and a shelf
    ctx.fillRect(w * 0.08, hgt * 0.12, w * 0.22, hgt * 0.36);
    ctx.fillRect(w * 0.7, hgt * 0.3, w * 0.22, hgt * 0.03);
    const bob = Math.sin(t * 1.4) * 3;
    ctx.fillStyle = `hsl(${hue} 25% 62%)`;
    ctx.beginPath(); ctx.ellipse(w / 2, hgt * 0.42 + bob, hgt * 0.13, hgt * 0.16, 0, 0, Math.PI * 2); ctx.fill();
    ctx.fillStyle = `hsl(${hue} 40% 38%)`;
    ctx.beginPath(); ctx.ellipse(w / 2, hgt * 0.98 + bob, hgt * 0.36, hgt * 0.3, 0, Math.PI, 0); ctx.fill();
  };
  draw();
  setInterval(draw, 100);
  return c.captureStream(10);
}

/** A fake shared screen: a slide with a title and a chart. */
function fakeScreen(w = 1280, hgt = 720) {
  const c = document.createElement('canvas');
  c.width = w; c.height = hgt;
  const ctx = c.getContext('2d');
  const draw = () => {
    ctx.fillStyle = '#f8fafc'; ctx.fillRect(0, 0, w, hgt);
    ctx.fillStyle = '#1e293b'; ctx.font = 'bold 54px sans-serif'; ctx.fillText('Q3 release plan', 80, 120);
    ctx.fillStyle = '#64748b'; ctx.font = '30px sans-serif'; ctx.fillText('What ships, what waits', 80, 175);
    [0.45, 0.7, 0.55, 0.9, 0.62].forEach((v, i) => {
      ctx.fillStyle = i === 3 ? '#7c3aed' : '#0ea5e9';
      ctx.fillRect(120 + i * 200, hgt - 80 - v * 380, 120, v * 380);
    });
  };
  draw();
  setInterval(draw, 500);
  return c.captureStream(5);
}

export function runDemo(mode, { ui, chat, lobby, prejoin, count }) {
  document.body.classList.add('demo');
  $('#loading').hidden = true;
  const me = { id: 'u-ada', username: 'ada' };
  $('#user-chip').hidden = false;
  $('#user-name').textContent = me.username;
  const av = $('#user-avatar');
  av.textContent = initials(me.username);
  av.style.setProperty('--hue', hueOf(me.username));
  $('#call-info').append(h('span', { class: 'demo-pill', i18n: 'demo_badge' }));

  if (mode === 'prejoin' && prejoin) {
    const dev = (kind, labels) => labels.map((label, i) => ({ kind, deviceId: `${kind}-${i}`, label }));
    prejoin.showDemo({
      room: 'team-standup', me, people: NAMES.slice(0, Math.max(1, Math.min(8, count))),
      stream: fakeCamera(me.username),
      devices: {
        videoinput: dev('videoinput', ['Integrated Camera', 'USB Webcam C920']),
        audioinput: dev('audioinput', ['Default — Built-in Microphone', 'Headset Microphone']),
        audiooutput: dev('audiooutput', ['Default — Built-in Speakers', 'Headset']),
      },
      onJoin: () => location.assign(`${location.pathname}?demo=call&peers=${count}`),
    });
    return;
  }

  if (mode === 'lobby') {
    lobby.me = me;
    lobby.view.hidden = false;
    lobby.render([
      { name: 'team-standup', owner: { user_id: 'u-ada', username: 'ada' }, participants: 3, people: ['ada', 'grace', 'linus'] },
      { name: 'family', owner: { user_id: 'u-m', username: 'margaret' }, participants: 2, people: ['margaret', 'alan'] },
      { name: 'math_class_7b', owner: { user_id: 'u-k', username: 'katherine' }, participants: 9, people: ['katherine', 'dennis', 'barbara', 'edsger', 'niklaus', 'john', 'ken', 'bjarne', 'guido'] },
    ]);
    return;
  }

  const state = { audio: true, video: true, screen: false, hand: false };
  const sync = () => { ui.setState('local', state); ui.setControls({ ...state, canScreen: true }); };
  ui.on = {
    mic: () => { state.audio = !state.audio; sync(); },
    cam: () => { state.video = !state.video; sync(); },
    screen: () => { state.screen = !state.screen; sync(); },
    hand: () => { state.hand = !state.hand; sync(); },
    leave: () => { ui.hide(); showLeft('team-standup', () => { lobby.view.hidden = false; lobby.render([]); }); },
    react: (emoji) => showReaction(ui.tiles.get('local'), emoji),
    volume: (id, g) => g,
    kick: () => {},
    copyLink: () => {},
  };
  ui.show('team-standup');
  ui.setStatus('connected');
  ui.setLocal({ username: me.username, stream: fakeCamera(me.username), state });
  sync();
  const n = Math.max(1, Math.min(NAMES.length, count));
  for (let i = 0; i < n; i++) {
    const name = NAMES[i];
    const id = `demo-${name}`;
    const st = i === 1 ? { audio: false, video: false, screen: false, hand: true } : { audio: true, video: true, screen: false, hand: false };
    ui.addPeer({ peer_id: id, user_id: `u-${name}`, username: name, state: st }, { gain: i === 0 ? 1.5 : 1, canKick: true });
    ui.setStream(id, fakeCamera(name));
    ui.setConn(id, 'connected');
    showQuality(ui.tiles.get(id), [{ rttMs: 38, loss: 0, rate: 1.2e6 }, { rttMs: 190, loss: 3.4, rate: 420e3 }, { rttMs: 520, loss: 12, rate: 90e3 }][i % 3]);
  }
  ui.setSpeaking(`demo-${NAMES[0]}`, true);
  ui.setOwner({ id: me.id, me: true, canKick: true });
  // The active speaker: grace talks, then margaret, then grace again… (fake loudness).
  const talkers = [0, 2].filter((i) => i < n).map((i) => `demo-${NAMES[i]}`);
  ui.levelOf = (id) => (id === talkers[Math.floor(Date.now() / 8000) % talkers.length] ? 0.12 : 0);
  const q = new URLSearchParams(location.search);
  if (q.get('present') === '1' && n >= 3) {
    const id = `demo-${NAMES[2]}`;
    ui.setStream(id, fakeScreen());
    ui.setState(id, { audio: true, video: false, screen: true, hand: false });
  }
  if (q.get('view')) ui.setMode(q.get('view'));

  const at = (min) => new Date(Date.now() - min * 60000).toISOString();
  chat.reset(me.id, { room: 'demo' });
  chat.addMany([
    { id: 1, user_id: 'u-grace', username: 'grace', text: 'Morning! Can everyone hear me?', ts: at(14) },
    { id: 2, user_id: 'u-ada', username: 'ada', text: 'Loud and clear!', ts: at(13) },
    { id: 3, user_id: 'u-linus', username: 'linus', text: 'Camera is off, I am on the train.\nWill turn it on later.', ts: at(12) },
    { id: 4, user_id: 'u-grace', username: 'grace', text: 'Notes are here: https://example.org/notes/standup', ts: at(9) },
    { id: 5, user_id: 'u-grace', username: 'grace', text: 'Привет всем! <b>Это не жирный</b> — текст экранируется.', ts: at(8) },
    { id: 6, user_id: 'u-ada', username: 'ada', text: 'Thanks. Let’s start with the release.', ts: at(2) },
  ]);
  chat.setHasMore(true);
  if (q.get('files')) demoFiles(chat, me, at);
}

/** ?files=1: file messages (no previews without a server) and two files being sent, one refused. */
function demoFiles(chat, me, at) {
  chat.addMany([
    { id: 7, user_id: 'u-grace', username: 'grace', text: '', ts: at(1), attachment: { id: 'a1', name: 'Q3 release plan — final (v7).pdf', size: 2411725, type: 'application/pdf', thumbnail: null } },
    { id: 8, user_id: me.id, username: me.username, text: '', ts: at(1), attachment: { id: 'a2', name: 'server-logs-2026-12-07.tar.gz', size: 18350080, type: 'application/gzip', thumbnail: null } },
  ]);
  const up = chat.uploads;
  const fake = (name, size, type) => { const job = { file: { name, size, type }, name }; job.row = up._row(job); up.list.append(job.row); return job; };
  const sending = fake('standup-recording.mp4', 8808038, 'video/mp4');
  sending.row.dataset.state = 'uploading';
  up._progress(sending, 3565158, 8808038);
  up._fail(fake('design-assets.zip', 73400320, 'application/zip'), { code: 'too_large', max: 26214400 });
  chat._empty();
}
