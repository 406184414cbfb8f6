// The key backup from the browser (docs/e2ee.md "Key backup"): this device's conversation
// keys (inbound sender-key sessions), sealed with a recovery passphrase (backup.js) and
// stored on the server as an opaque blob; a new browser restores them and reads the history
// the backup covers. The blob is the SDK's: either side restores what the other backed up.
// Once a passphrase was used here, the key it derives is remembered as a non-extractable
// CryptoKey in the (at-rest encrypted) state, and keys that arrive later are backed up
// automatically, without the passphrase.

import { api } from "../api.js";
import { parameters, seal, sealWithKey, unseal, unsealWithKey } from "./backup.js";
import * as idb from "./idb.js";
import { DecryptionError, b64decode, b64encode, pbkdf2AesKey } from "./primitives.js";

export class BackupPassphraseError extends Error {}

/** A browser inbound session as the SDK's InboundSession.to_json (without replay marks). */
function exported(session) {
  return {
    conversation_id: session.conversationId,
    sender_user_id: session.senderUserId,
    sender_device_id: session.senderDeviceId,
    session_id: session.sessionId,
    first_index: session.firstIndex,
    first_chain_key: b64encode(session.firstChainKey),
    seen: [],
  };
}

/** The SDK's JSON back to a browser session; null when malformed (a bad entry is skipped). */
function imported(raw) {
  try {
    const chainKey = b64decode(raw.first_chain_key);
    if (chainKey.length !== 32 || b64decode(raw.session_id).length !== 32) return null;
    const strings = [raw.conversation_id, raw.sender_user_id, raw.sender_device_id, raw.session_id];
    if (!strings.every((v) => typeof v === "string" && v) || !Number.isSafeInteger(raw.first_index) || raw.first_index < 0) return null;
    return {
      conversationId: raw.conversation_id,
      senderUserId: raw.sender_user_id,
      senderDeviceId: raw.sender_device_id,
      sessionId: raw.session_id,
      firstIndex: raw.first_index,
      firstChainKey: chainKey,
      seen: new Map(),
    };
  } catch {
    return null;
  }
}

const slotOf = (s) => `${s.conversationId}|${s.senderUserId}|${s.senderDeviceId}|${s.sessionId}`;

/** The server's backup ({version, data, updated_at}) or null when there is none. */
export async function current() {
  try {
    return (await api.get("/key-backup")).backup;
  } catch (error) {
    if (error?.status === 404) return null;
    throw error;
  }
}

/** Add the sessions held here to a backup's (earliest index wins); how many changed. */
function merge(sessions, state) {
  let changed = 0;
  for (const [slot, held] of Object.entries(state?.inbound || {})) {
    const known = sessions[slot] && imported(sessions[slot]);
    if (!known || held.firstIndex < known.firstIndex) {
      sessions[slot] = exported(held);
      changed += 1;
    }
  }
  return changed;
}

/** Remember the key `passphrase` derives for this blob's salt: later backups need no passphrase. */
async function remember(userId, passphrase, blob) {
  const { salt, iterations } = parameters(blob);
  const key = await pbkdf2AesKey(passphrase, salt, iterations);
  await idb.transaction(userId, async (state) => {
    if (!state) return null;
    state.backupKey = { key, salt, iterations };
    return { state };
  });
}

/** Whether this browser backs new keys up by itself (a passphrase was used here). */
export async function automatic(userId) {
  return Boolean((await idb.load(userId))?.backupKey);
}

/**
 * Back up what arrived since, under the remembered key; the backup's version, or null when
 * there is no remembered key (or the backup was replaced with another passphrase elsewhere:
 * then it is forgotten, and the user sets it again).
 */
export async function backUpAutomatically(userId) {
  const state = await idb.load(userId);
  const remembered = state?.backupKey;
  if (!remembered) return null;
  const existing = await current();
  let sessions = {};
  if (existing) {
    const payload = await unsealWithKey(remembered.key, remembered.salt, existing.data).catch(() => null);
    if (!payload) {
      await idb.transaction(userId, async (s) => {
        if (!s) return null;
        delete s.backupKey;
        return { state: s };
      });
      return null;
    }
    sessions = payload.inbound || {};
  }
  if (!merge(sessions, state) && existing) return existing.version;
  const blob = await sealWithKey(remembered.key, remembered.salt, remembered.iterations, { inbound: sessions });
  return (await api.put("/key-backup", { data: blob, if_version: existing?.version ?? 0 })).backup.version;
}

/**
 * Back up every conversation key held here, merged with what the backup already has
 * (earliest index wins); `replace` starts over when the passphrase does not open the old
 * one. → {version, sessions}
 */
export async function backUp(userId, passphrase, { replace = false } = {}) {
  const existing = await current();
  let sessions = {};
  if (existing && !replace) {
    try {
      sessions = (await unseal(passphrase, existing.data))?.inbound || {};
    } catch (error) {
      if (error instanceof DecryptionError) throw new BackupPassphraseError("This passphrase does not open your existing key backup");
      throw error;
    }
  }
  merge(sessions, await idb.load(userId));
  const blob = await seal(passphrase, { inbound: sessions });
  const answer = await api.put("/key-backup", { data: blob, if_version: existing?.version ?? 0 });
  await remember(userId, passphrase, blob);
  return { version: answer.backup.version, sessions: Object.keys(sessions).length };
}

/** Add the backup's conversation keys to this browser's device; how many it held. */
export async function restore(userId, passphrase) {
  const existing = await current();
  if (!existing) throw new BackupPassphraseError("There is no key backup for your account yet");
  let payload;
  try {
    payload = await unseal(passphrase, existing.data);
  } catch (error) {
    if (error instanceof DecryptionError) throw new BackupPassphraseError("That passphrase does not open your key backup");
    throw error;
  }
  const restored = Object.values(payload?.inbound || {}).map(imported).filter(Boolean);
  await idb.transaction(userId, async (state) => {
    if (!state) throw new Error("This browser has no encryption device yet");
    for (const session of restored) {
      const slot = slotOf(session);
      const held = state.inbound[slot];
      if (!held || session.firstIndex < held.firstIndex) state.inbound[slot] = held ? { ...session, seen: held.seen } : session;
    }
    return { state };
  });
  await remember(userId, passphrase, existing.data);
  return restored.length;
}
