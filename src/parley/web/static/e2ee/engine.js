// End-to-end encryption for the logged-in user in this browser (docs/e2ee.md; the SDK's
// parley.client.e2ee.engine is the reference it interoperates with). One device per
// browser and user, kept in IndexedDB (idb.js); every change of state goes through
// idb.transaction, so tabs of the same browser take turns.

import { api, deviceName } from "../api.js";
import * as dev from "./device.js";
import * as idb from "./idb.js";
import * as keyBackup from "./key_backup.js";
import { validDescriptions } from "./media.js";
import * as pairwise from "./pairwise.js";
import { DecryptionError, b64decode, b64encode, equal, fromUtf8, hex, randomBytes, utf8 } from "./primitives.js";
import * as searchIndex from "./search_index.js";
import * as senderKeys from "./sender_keys.js";
import * as x3dh from "./x3dh.js";

const MAX_PROCESSED = 2000;
const TO_DEVICE_CHUNK = 500;
const CLAIM_CHUNK = 1000; // devices per claim (the server's limit)
// An epoch ends after this many messages or seconds (DESIGN §6.1), besides membership loss.
const MAX_EPOCH_MESSAGES = 1000;
const MAX_EPOCH_SECONDS = 90 * 86400;
const MAX_SESSIONS_PER_PEER = 4;
const BACKUP_DELAY_MS = 1000; // new keys arriving together are backed up together

const peerKey = (userId, deviceId) => `${userId}|${deviceId}`;
const inboundKey = (conversationId, userId, deviceId, sessionId) => `${conversationId}|${userId}|${deviceId}|${sessionId}`;

class E2ee {
  constructor() {
    this.userId = null;
    this.deviceId = null;
    this.ready = null; // a promise: the device exists and its keys are on the server
    this.waiting = new Map(); // message id -> message that had no key yet (retried on keys)
    this.onDecrypted = () => {}; // (message): set by the app to re-render it
    this.inflight = new WeakSet(); // messages being decrypted
    this.requested = new Set(); // inbound slots whose keys were asked of our other devices
    this.quotes = new Map(); // message id -> Promise<text> (replies to messages not loaded)
    this.backupTimer = null;
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
    this.waiting.clear();
    this.requested.clear();
    this.quotes.clear();
    clearTimeout(this.backupTimer);
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
    // What arrived while this browser was away (sender keys for what it will show).
    await this.syncInbox().catch(() => {});
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

  // --- devices and trust

  /**
   * The listed devices of these users whose self-signatures verify and whose keys did not
   * change since this browser first saw them (trust on first use, like the SDK).
   */
  async devicesOf(userIds) {
    const wanted = [...new Set(userIds)].sort();
    const verified = await this.listedDevices(wanted);
    return idb.transaction(this.userId, async (state) => {
      const good = Object.fromEntries(wanted.map((id) => [id, []]));
      for (const raw of verified) {
        const key = peerKey(raw.user_id, raw.device_id);
        const keys = raw.identity_keys;
        const known = state.knownDevices[key];
        if (!known) {
          state.knownDevices[key] = { signing_key: keys.signing_key, identity_key: keys.identity_key, first_seen: Date.now() / 1000 };
        } else if (known.signing_key !== keys.signing_key || known.identity_key !== keys.identity_key) {
          // Left out, and flagged: the user should compare safety numbers (as the SDK does).
          state.identityChanges ||= [];
          if (!state.identityChanges.some((c) => c.user_id === raw.user_id && c.device_id === raw.device_id)) {
            state.identityChanges.push({ user_id: raw.user_id, device_id: raw.device_id, seen_at: Date.now() / 1000 });
          }
          continue;
        }
        (good[raw.user_id] ||= []).push(raw);
      }
      return { state, value: good };
    });
  }

  /** The listed devices of these users whose self-signatures verify (changed keys too). */
  async listedDevices(userIds) {
    const wanted = [...new Set(userIds)].sort();
    const listed = {};
    for (let i = 0; i < wanted.length; i += 1000) {
      Object.assign(listed, (await api.post("/keys/query", { user_ids: wanted.slice(i, i + 1000) })).devices);
    }
    const verified = [];
    for (const devices of Object.values(listed)) {
      for (const raw of devices) {
        try {
          await x3dh.verifyBundle(x3dh.parseBundle({ ...raw, one_time_prekey: null }));
          verified.push(raw);
        } catch {
          /* a device whose signatures do not verify is never used */
        }
      }
    }
    return verified;
  }

  // --- key backup and logout

  /** Back up this browser's conversation keys with a recovery passphrase (key_backup.js). */
  async backUpKeys(passphrase, options) {
    await this.ready;
    return keyBackup.backUp(this.userId, passphrase, options);
  }

  /** Whether new keys are backed up automatically from this browser. */
  async backsUpAutomatically() {
    await this.ready;
    return keyBackup.automatic(this.userId);
  }

  /**
   * After new conversation keys arrive (or our own new epoch starts): back them up under the
   * remembered key, soon and once for a burst. A conflict with another tab or device is
   * tried again once.
   */
  _scheduleBackup(retry = true) {
    clearTimeout(this.backupTimer);
    const userId = this.userId;
    this.backupTimer = setTimeout(() => {
      keyBackup.backUpAutomatically(userId)
        .then((version) => {
          // Observable by the page (and the browser tests): the backup's current version.
          if (version && this.userId === userId) document.documentElement.dataset.e2eeBackupVersion = String(version);
        })
        .catch((error) => {
          if (retry && error?.code === "BACKUP_VERSION_MISMATCH") this._scheduleBackup(false);
        });
    }, BACKUP_DELAY_MS);
  }

  /** Restore the key backup here, then read again what was waiting for keys. */
  async restoreKeys(passphrase) {
    await this.ready;
    const count = await keyBackup.restore(this.userId, passphrase);
    await this._retryWaiting();
    return count;
  }

  /**
   * Logging out removes this browser's device: deleted on the server (its keys, prekeys and
   * inbox: DELETE /devices/{id}) and here (the state and its at-rest key). Nothing more is
   * encrypted to it; what was not backed up can't be read in this browser again.
   */
  async removeDevice() {
    const userId = this.userId;
    if (!userId) return;
    const deviceId = this.deviceId || (await idb.load(userId).catch(() => null))?.deviceId;
    if (deviceId) {
      try {
        await api.delete(`/devices/${encodeURIComponent(deviceId)}`);
      } catch (error) {
        if (error?.status !== 404) throw error; // already gone: fine
      }
    }
    await idb.remove(userId);
    this.stop();
  }

  // --- to-device messages (pairwise channels)

  /** Read and acknowledge this device's to-device inbox; how many were read. */
  async syncInbox() {
    if (!this.deviceId) await this.ready;
    let read = 0;
    for (;;) {
      const page = await api.get("/to-device", { device_id: this.deviceId });
      if (!page.messages.length) return read;
      await this.receiveToDevice(page.messages);
      read += page.messages.length;
      if (!page.has_more) return read;
    }
  }

  /**
   * Decrypt and apply pushed or fetched to-device messages, then acknowledge them (those
   * that fail too: a message unreadable now never will be), and retry the conversation
   * messages that were waiting for a key.
   */
  async receiveToDevice(messages) {
    if (!this.deviceId) await this.ready;
    const devices = await this.devicesOf(messages.map((m) => m.sender_id));
    const answers = await idb.transaction(this.userId, async (state) => {
      const out = [];
      for (const message of messages) {
        if (state.processed.includes(message.id)) continue;
        try {
          const answer = await this._receiveOne(state, message, devices[message.sender_id] || []);
          if (answer) out.push([peerKey(message.sender_id, message.sender_device_id), answer]);
        } catch {
          /* unreadable: dropped (docs/e2ee.md "Failure") */
        }
        state.processed = [...state.processed, message.id].slice(-MAX_PROCESSED);
      }
      return { state, value: out };
    });
    await api.post("/to-device/ack", { ids: messages.map((m) => m.id) });
    for (const [target, answer] of answers) { // keys our own other devices asked for
      await this._sendToDevices([target], answer).catch(() => {});
    }
    this._scheduleBackup();
    await this.replenish();
    await this._retryWaiting();
  }

  /** Apply one to-device message; what to answer its sender, if anything. */
  async _receiveOne(state, message, senderDevices) {
    const wire = pairwise.parseWire(message.ciphertext);
    const sender = message.sender_id;
    const senderDevice = message.sender_device_id;
    const senderKey = b64decode(wire.sender_key);
    const listed = senderDevices.find((d) => d.device_id === senderDevice);
    if (!listed || !equal(b64decode(listed.identity_keys.identity_key), senderKey)) {
      throw new DecryptionError("the sender's identity key is not the listed one");
    }
    const key = peerKey(sender, senderDevice);
    const sessions = state.pairwise[key] || [];
    let plaintext = null;
    let used = null;
    for (const session of sessions) {
      if (!equal(session.peerIdentity, senderKey)) continue;
      if (wire.prekey && !equal(b64decode(wire.prekey.ephemeral_key), session.baseKey)) continue;
      try {
        plaintext = await pairwise.decrypt(session, wire);
        used = session;
        break;
      } catch {
        /* another session may read it */
      }
    }
    if (plaintext === null) {
      const prekey = wire.prekey;
      if (!prekey) throw new DecryptionError("no session for this message");
      const signed = state.signedPrekeys[Number(prekey.signed_prekey_id)];
      if (!signed) throw new DecryptionError("unknown signed prekey");
      let oneTime = null;
      if (prekey.one_time_prekey_id !== null && prekey.one_time_prekey_id !== undefined) {
        oneTime = state.oneTimePrekeys[Number(prekey.one_time_prekey_id)];
        if (!oneTime) throw new DecryptionError("one-time prekey unknown or already used");
      }
      const session = await pairwise.respond(state.identity, signed, oneTime, senderKey, b64decode(prekey.ephemeral_key));
      plaintext = await pairwise.decrypt(session, wire);
      if (oneTime) delete state.oneTimePrekeys[Number(prekey.one_time_prekey_id)]; // one-time
      used = session;
      sessions.push(session);
    }
    // Most recently heard from first (the one to send with), then newest.
    state.pairwise[key] = [used, ...sessions.filter((s) => s !== used)]
      .sort((a, b) => (b.lastReceived - a.lastReceived) || (b.createdAt - a.createdAt))
      .slice(0, MAX_SESSIONS_PER_PEER);
    const inner = JSON.parse(fromUtf8(plaintext));
    if (inner.sender_user_id !== sender || inner.sender_device_id !== senderDevice
      || inner.recipient_user_id !== this.userId || inner.recipient_device_id !== this.deviceId) {
      throw new DecryptionError("the message names another sender or recipient");
    }
    const content = inner.content || {};
    if (inner.type === "sender_key") {
      storeInbound(state, senderKeys.inboundFromExport(sender, senderDevice, content));
    } else if (inner.type === "forwarded_key" && sender === this.userId) {
      // Only our own devices forward keys; the messages stay signed by their real sender.
      storeInbound(state, senderKeys.inboundFromExport(String(content.sender_user_id), String(content.sender_device_id), content));
    } else if (inner.type === "key_request" && sender === this.userId) {
      // Our other device asks for a conversation key we may hold: the session from the
      // earliest index known here (docs/e2ee.md "Receiving").
      const held = state.inbound[inboundKey(String(content.conversation_id), String(content.sender_user_id), String(content.sender_device_id), String(content.session_id))];
      if (held) {
        return {
          type: "forwarded_key",
          content: {
            conversation_id: held.conversationId,
            sender_user_id: held.senderUserId,
            sender_device_id: held.senderDeviceId,
            session_id: held.sessionId,
            index: held.firstIndex,
            chain_key: b64encode(held.firstChainKey),
          },
        };
      }
    }
    return null;
  }

  // --- sending (sender keys shared over the pairwise channels)

  /** `{ciphertext, e2ee}` for a message, after sharing the sender key as needed. */
  async encrypt(conversationId, text, attachments = []) {
    await this.ready;
    await this._ensureShared(conversationId);
    const payload = { body: text };
    if (attachments.length) payload.attachments = attachments;
    const plaintext = utf8(JSON.stringify(payload));
    return idb.transaction(this.userId, async (state) => {
      const sealed = await senderKeys.encrypt(state.outbound[conversationId], this.userId, this.deviceId, plaintext);
      return { state, value: sealed };
    });
  }

  async _ensureShared(conversationId) {
    // Members are read afresh for every send: a removal must start a new epoch at once.
    const members = (await api.get(`/conversations/${encodeURIComponent(conversationId)}/members`)).members.map((m) => m.user_id);
    const own = peerKey(this.userId, this.deviceId);
    const targets = Object.values(await this.devicesOf(members)).flat()
      .map((d) => peerKey(d.user_id, d.device_id)).filter((t) => t !== own);
    const { exported, missing } = await idb.transaction(this.userId, async (state) => {
      let session = state.outbound[conversationId];
      const now = Date.now() / 1000;
      if (!session || session.index >= MAX_EPOCH_MESSAGES || now - session.createdAt >= MAX_EPOCH_SECONDS
        || session.members.some((m) => !members.includes(m)) // someone left or was removed
        || session.sharedWith.some((t) => !targets.includes(t))) { // a device went away
        session = await senderKeys.newOutbound(conversationId);
        // Our own messages are read back like anyone's (and backed up like them).
        storeInbound(state, senderKeys.inboundFromExport(this.userId, this.deviceId, senderKeys.exportOutbound(session)));
        this._scheduleBackup();
      }
      session.members = [...members];
      state.outbound[conversationId] = session;
      const value = { exported: senderKeys.exportOutbound(session), missing: targets.filter((t) => !session.sharedWith.includes(t)) };
      return { state, value };
    });
    if (!missing.length) return;
    const delivered = await this._sendToDevices(missing, { type: "sender_key", content: exported });
    await idb.transaction(this.userId, async (state) => {
      const current = state.outbound[conversationId];
      if (!current || b64encode(current.signing.publicKey) !== exported.session_id) return null;
      current.sharedWith = [...new Set([...current.sharedWith, ...delivered])];
      return { state };
    });
  }

  /** Encrypt `content` for each device ("user|device") and post it; the devices that got it. */
  async _sendToDevices(targets, content) {
    const without = await idb.transaction(this.userId, async (state) => ({ value: targets.filter((t) => !state.pairwise[t]?.length) }));
    if (without.length) await this._startSessions(without);
    const messages = await idb.transaction(this.userId, async (state) => {
      const out = [];
      for (const target of targets) {
        const session = state.pairwise[target]?.[0];
        if (!session) continue; // no bundle: the device vanished
        const [userId, deviceId] = target.split("|");
        const inner = {
          sender_user_id: this.userId,
          sender_device_id: this.deviceId,
          recipient_user_id: userId,
          recipient_device_id: deviceId,
          recipient_identity_key: b64encode(session.peerIdentity),
          ...content,
        };
        const ciphertext = await pairwise.encrypt(session, state.identity.publicKey, utf8(JSON.stringify(inner)));
        out.push({ user_id: userId, device_id: deviceId, message_id: hex(randomBytes(16)), ciphertext });
      }
      return { state, value: out };
    });
    const delivered = [];
    for (let i = 0; i < messages.length; i += TO_DEVICE_CHUNK) {
      const answer = await api.post("/to-device", { messages: messages.slice(i, i + TO_DEVICE_CHUNK), sender_device_id: this.deviceId });
      delivered.push(...answer.sent.map((s) => peerKey(s.user_id, s.device_id)));
    }
    return delivered;
  }

  async _startSessions(targets) {
    const bundles = [];
    for (let i = 0; i < targets.length; i += CLAIM_CHUNK) {
      const devices = targets.slice(i, i + CLAIM_CHUNK).map((t) => {
        const [user_id, device_id] = t.split("|");
        return { user_id, device_id };
      });
      bundles.push(...(await api.post("/keys/claim", { devices })).bundles);
    }
    await idb.transaction(this.userId, async (state) => {
      for (const raw of bundles) {
        const key = peerKey(raw.user_id, raw.device_id);
        const known = state.knownDevices[key];
        const keys = raw.identity_keys;
        if (known && (known.signing_key !== keys.signing_key || known.identity_key !== keys.identity_key)) continue;
        try {
          const session = await pairwise.initiate(state.identity, x3dh.parseBundle(raw)); // verifies both signatures
          state.knownDevices[key] ||= { signing_key: keys.signing_key, identity_key: keys.identity_key, first_seen: Date.now() / 1000 };
          state.pairwise[key] = [session, ...(state.pairwise[key] || [])].slice(0, MAX_SESSIONS_PER_PEER);
        } catch {
          /* a bundle that does not verify is never used */
        }
      }
      return { state };
    });
  }

  // --- conversation messages

  /**
   * Decrypt an encrypted message in place: `content` becomes its text and `decrypted`
   * true, or `decrypted` false with a `decryption_error` (kept to be retried when keys
   * arrive). Reads the inbox once when the key is missing.
   */
  async decryptMessage(message) {
    try {
      if (!this.ready) throw new Error("no device");
      await this.ready;
    } catch {
      message.decrypted = false;
      message.decryption_error = "This browser has no encryption keys yet";
      this.waiting.set(message.id, message);
      return message;
    }
    let result = await this._decrypt(message);
    if (result.missing) {
      await this.syncInbox();
      result = await this._decrypt(message);
    }
    if (result.text !== undefined) {
      this._readable(message, result);
    } else {
      message.decrypted = false;
      message.decryption_error = result.error;
      message.decryption_missing = Boolean(result.missing);
      if (result.missing) this.waiting.set(message.id, message);
    }
    return message;
  }

  /**
   * "Retry": ask this user's other devices for the key of an undecryptable message (a
   * `key_request` over the pairwise channels); the message is then "waiting for keys"
   * and decrypts when a `forwarded_key` arrives. How many devices were asked.
   */
  async requestKey(message) {
    await this.ready;
    const envelope = message.e2ee || {};
    const content = {
      conversation_id: message.conversation_id,
      sender_user_id: message.sender_id,
      sender_device_id: envelope.sender_device_id,
      session_id: envelope.session_id,
    };
    const own = peerKey(this.userId, this.deviceId);
    const others = ((await this.devicesOf([this.userId]))[this.userId] || [])
      .map((d) => peerKey(d.user_id, d.device_id)).filter((t) => t !== own);
    // Ready for an answer before anyone is asked (one can come back at once); shown as
    // "waiting" only once the request has reached the server, so that state is true.
    this.waiting.set(message.id, message);
    this.requested.add(inboundKey(content.conversation_id, content.sender_user_id, content.sender_device_id, content.session_id));
    const asked = others.length ? (await this._sendToDevices(others, { type: "key_request", content })).length : 0;
    if (!message.decrypted) message.key_requested = true;
    return asked;
  }

  /** The text of a message that is not loaded (a reply's quote), decrypted here; "" if not. */
  quoteText(messageId) {
    if (!this.quotes.has(messageId)) {
      if (this.quotes.size > 200) this.quotes.clear();
      this.quotes.set(messageId, this._quoteText(messageId));
    }
    return this.quotes.get(messageId);
  }

  async _quoteText(messageId) {
    const found = (await api.get(`/messages/${encodeURIComponent(messageId)}`)).message;
    if (!found?.ciphertext) return found?.content || "";
    const opened = await this.decryptMessage(found);
    return opened.decrypted ? opened.content : "";
  }

  /** Start decrypting a message shown before it was read (once); onDecrypted tells when. */
  decryptSoon(message) {
    if (this.inflight.has(message)) return;
    this.inflight.add(message);
    this.decryptMessage(message)
      .catch(() => {
        message.decrypted = false;
        message.decryption_error = "Unable to decrypt";
      })
      .finally(() => {
        this.inflight.delete(message);
        this.onDecrypted(message);
      });
  }

  async _decrypt(message) {
    const envelope = message.e2ee || {};
    return idb.transaction(this.userId, async (state) => {
      const slot = inboundKey(message.conversation_id, message.sender_id, envelope.sender_device_id, envelope.session_id);
      const session = state.inbound[slot];
      if (!session) return { value: { missing: true, error: "The key for this message has not arrived yet" } };
      try {
        const plaintext = await senderKeys.decrypt(session, envelope, message.ciphertext, message.id);
        const payload = JSON.parse(fromUtf8(plaintext));
        if (!payload || typeof payload !== "object") throw new DecryptionError("not a message payload");
        return { state, value: { text: typeof payload.body === "string" ? payload.body : "", payload } };
      } catch (error) {
        return { value: { missing: false, error: error.message || "Unable to decrypt" } };
      }
    });
  }

  /** A message decrypted: its text in place, and filed in the local search index. */
  _readable(message, result) {
    opened(message, result);
    this.waiting.delete(message.id);
    searchIndex.add(this.userId, message).catch(() => {});
  }

  async _retryWaiting() {
    for (const message of [...this.waiting.values()]) {
      const result = await this._decrypt(message);
      if (result.text === undefined) continue;
      this._readable(message, result);
      this.onDecrypted(message);
    }
  }
}

/** A decrypted message: its text, and the attachments its payload names (with their keys). */
function opened(message, result) {
  message.content = result.text;
  message.e2ee_attachments = validDescriptions(result.payload?.attachments);
  message.decrypted = true;
  delete message.decryption_error;
  delete message.decryption_missing;
  delete message.key_requested;
}

function storeInbound(state, shared) {
  const slot = inboundKey(shared.conversationId, shared.senderUserId, shared.senderDeviceId, shared.sessionId);
  const held = state.inbound[slot];
  // A second share of the same session: keep the earliest index known.
  if (!held || shared.firstIndex < held.firstIndex) {
    state.inbound[slot] = held ? { ...shared, seen: held.seen } : shared;
  }
}

export const e2ee = new E2ee();
