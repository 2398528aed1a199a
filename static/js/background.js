// The canvas "web": a slow net of violet/cyan points joined by fading threads, behind everything.
// Paused while the tab is hidden; a single still frame under prefers-reduced-motion.

const COLORS = [[139, 92, 246], [34, 211, 238], [167, 139, 250], [103, 232, 249]];
const LINK = 165; // px: threads between points closer than this

export function startBackground(canvas) {
  if (!canvas || !canvas.getContext) return { setQuiet() {}, stop() {} };
  const ctx = canvas.getContext('2d');
  const motion = window.matchMedia('(prefers-reduced-motion: reduce)');
  let w = 0, h = 0, dpr = 1, points = [], raf = 0, last = 0, quiet = false, stopped = false;
  let seed = 7; // deterministic layout: the still frame looks the same every time
  const rand = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;

  function resize() {
    dpr = Math.min(window.devicePixelRatio || 1, 2);
    w = window.innerWidth; h = window.innerHeight;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const want = Math.max(28, Math.min(110, Math.round((w * h) / 11000)));
    seed = 7;
    points = Array.from({ length: want }, () => ({
      x: rand() * w, y: rand() * h,
      vx: (rand() - 0.5) * 0.22, vy: (rand() - 0.5) * 0.22,
      r: 1 + rand() * 1.6, c: COLORS[Math.floor(rand() * COLORS.length)],
    }));
    draw();
  }

  function draw() {
    ctx.clearRect(0, 0, w, h);
    const n = points.length;
    ctx.lineWidth = 1;
    for (let i = 0; i < n; i++) {
      const a = points[i];
      for (let j = i + 1; j < n; j++) {
        const b = points[j];
        const dx = a.x - b.x, dy = a.y - b.y;
        const d2 = dx * dx + dy * dy;
        if (d2 > LINK * LINK) continue;
        const alpha = (1 - Math.sqrt(d2) / LINK) * 0.32;
        const c = a.c;
        ctx.strokeStyle = `rgba(${c[0]},${c[1]},${c[2]},${alpha.toFixed(3)})`;
        ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
      }
    }
    for (const p of points) {
      ctx.fillStyle = `rgba(${p.c[0]},${p.c[1]},${p.c[2]},0.75)`;
      ctx.beginPath(); ctx.arc(p.x, p.y, p.r, 0, Math.PI * 2); ctx.fill();
    }
  }

  function step(now) {
    raf = 0;
    if (stopped || document.hidden || motion.matches) return;
    const frameMs = quiet ? 100 : 33; // ~30 fps; ~10 fps during a call (the CPU belongs to video)
    if (now - last >= frameMs) {
      const k = Math.min(3, (now - last) / 33 || 1);
      last = now;
      for (const p of points) {
        p.x += p.vx * k; p.y += p.vy * k;
        if (p.x < -20) p.x = w + 20; else if (p.x > w + 20) p.x = -20;
        if (p.y < -20) p.y = h + 20; else if (p.y > h + 20) p.y = -20;
      }
      draw();
    }
    raf = requestAnimationFrame(step);
  }

  function run() {
    if (!raf && !stopped && !document.hidden && !motion.matches) { last = performance.now(); raf = requestAnimationFrame(step); }
  }

  window.addEventListener('resize', resize);
  document.addEventListener('visibilitychange', run);
  motion.addEventListener?.('change', () => { draw(); run(); });
  resize();
  run();

  return {
    /** Fewer frames per second (during a call). */
    setQuiet(q) { quiet = !!q; },
    stop() { stopped = true; cancelAnimationFrame(raf); raf = 0; },
  };
}
