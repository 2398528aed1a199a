// Refreshing a tab every few seconds while it is shown and the page is visible; one request
// in flight at a time, the next one scheduled when it is done.

export class Poller {
  /** run(signal) → Promise; called now and every `ms` while started. */
  constructor(run, ms) {
    this.run = run;
    this.ms = ms;
    this.on = false;
    this.timer = 0;
    this.abort = null;
    document.addEventListener('visibilitychange', () => {
      if (!this.on) return;
      if (document.hidden) this._stopTimer(); else this.tick();
    });
  }

  start() { this.on = true; this.tick(); }

  stop() { this.on = false; this._stopTimer(); }

  _stopTimer() { clearTimeout(this.timer); this.abort?.abort(); this.abort = null; }

  async tick() {
    this._stopTimer();
    const ctl = this.abort = new AbortController();
    try { await this.run(ctl.signal); } catch { /* run reports its own errors */ }
    if (this.on && ctl === this.abort && !document.hidden) this.timer = setTimeout(() => this.tick(), this.ms);
  }
}
