// End-to-end encryption for the logged-in user in this browser (docs/e2ee.md; the SDK's
// parley.client.e2ee.engine is the reference it interoperates with). One device per
// browser and user, kept in IndexedDB (idb.js); every change of state goes through
// idb.transaction, so tabs of the same browser take turns.

import { api, deviceName } from "../api.js";
import * as dev from "./device.js";
import * as idb from "./idb.js";

class E2ee {
  constructor() {
    this.userId = null;
    this.deviceId = null;
    this.ready = null; // a promise: the device exists and its keys are on the server
  }

  /** Create (first login in this browser) or load the device, upload, replenish. */
  start(me) {
    if (this.userId === me.id && this.ready) return this.ready;
    this.userId = me.id;
    this.deviceId = null;
    this.ready = this._start(me).catch((error) => {
      this.ready = null; // the next start tries again
      throw error;
    });
    return this.ready;
  }

  stop() {
    this.userId = null;
    this.deviceId = null;
    this.ready = null;
    delete document.documentElement.dataset.e2eeDevice;
  }

  async _start(me) {
    const body = await idb.transaction(me.id, async (state) => {
      state ||= await dev.create(me.id);
      const upload = { identity_keys: await dev.identityKeys(state) };
      await dev.rotateSignedPrekeyIfDue(state);
      upload.signed_prekey = await dev.signedPrekey(state);
      // The private halves are stored before the server has the public ones, so no
      // prekey handed out is ever unknown here.
      if (!state.uploaded) upload.one_time_prekeys = await dev.generateOneTimePrekeys(state, dev.PREKEY_BATCH);
      upload.display_name = deviceName();
      return { state, value: { deviceId: state.deviceId, upload } };
    });
    const answer = await api.put(`/devices/${encodeURIComponent(body.deviceId)}/keys`, body.upload);
    await idb.transaction(me.id, async (state) => {
      state.uploaded = true;
      return { state };
    });
    this.deviceId = body.deviceId;
    await this.replenish(answer.one_time_prekey_count);
    // Observable by the page (and the browser tests): this browser has a live device.
    document.documentElement.dataset.e2eeDevice = this.deviceId;
    return this.deviceId;
  }

  /** Top up one-time prekeys when fewer than LOW_WATERMARK are left on the server. */
  async replenish(count = null) {
    if (count === null) {
      count = (await api.get("/keys/count", { device_id: this.deviceId })).one_time_prekeys;
    }
    if (count >= dev.LOW_WATERMARK) return;
    const fresh = await idb.transaction(this.userId, async (state) => ({
      state,
      value: await dev.generateOneTimePrekeys(state, dev.PREKEY_BATCH),
    }));
    await api.put(`/devices/${encodeURIComponent(this.deviceId)}/keys`, { one_time_prekeys: fresh });
  }
}

export const e2ee = new E2ee();
