// The in-call settings dialog: the same pickers and switches as the pre-join screen; a change
// switches the device in the running call (CallSession.switchDevice / setOption).

import { $ } from './common.js';
import { DevicePanel, listDevices, loadPrefs } from './devices.js';

export class CallSettings {
  /** getSession(): the running CallSession or null. */
  constructor(getSession) {
    this.getSession = getSession;
    this.dialog = $('#settings-dialog');
    this.devices = null;
    this.panel = new DevicePanel($('#settings-devices'), 'settings', {
      device: (kind, id) => this._device(kind, id),
      option: (name, on) => this._option(name, on),
    });
    $('#open-settings').addEventListener('click', () => this.open());
    $('#settings-close').addEventListener('click', () => this.dialog.close());
    // A click on the backdrop (outside the card) closes it too.
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.dialog.close(); });
  }

  async open() {
    const s = this.getSession();
    if (!s) return;
    s.onDevices = () => { if (this.dialog.open) this.refresh(); };
    await this.refresh();
    if (!this.dialog.open) this.dialog.showModal();
  }

  close() { if (this.dialog.open) this.dialog.close(); }

  async refresh() {
    const s = this.getSession();
    if (!s) return this.close();
    const devices = await listDevices();
    this.devices = devices;
    this.panel.render(devices, s.currentDevices(devices), loadPrefs(), { blur: s.blurCapable() });
  }

  async _device(kind, id) {
    const s = this.getSession();
    if (!s) return;
    const device = (this.devices?.[kind] || []).find((d) => d.deviceId === id) || null;
    await s.switchDevice(kind, device);
    await this.refresh();
  }

  async _option(name, on) {
    const s = this.getSession();
    if (!s) return;
    await s.setOption(name, on);
    await this.refresh();
  }
}
