// This browser's end-to-end encryption state in IndexedDB, one record per user, encrypted at
// rest (docs/e2ee.md "In the web client"). Private keys stay non-extractable CryptoKeys
// (structured clones the browser keeps, no script can read their bytes); everything else —
// chain keys, ratchet roots, skipped message keys, trust records — is sealed with
// AES-256-GCM under a per-user key that is itself a non-extractable CryptoKey in the same
// database: it never leaves the browser, and deleting it shreds the record. The local
// search index (search_index.js) seals its entries under the same key and files them under
// HMACs of their terms, keyed by a second per-user non-extractable key kept here too.

import { aesGcmSealed, aesGcmOpened, b64decode, b64encode, randomBytes, utf8, fromUtf8 } from "./primitives.js";

const DB_NAME = "parley-e2ee";
const STORE = "devices";
const KEYS = "keys"; // slot -> a per-user CryptoKey (non-extractable): see KINDS
const SEALED = "parley-e2ee-sealed-v1";
const IV_BYTES = 12; // AES-GCM's 96-bit nonce, fresh and random for every seal

// The per-user keys and the slot each is kept under. The at-rest key's slot is the bare
// user id, as it has been since the first sealed record.
const KINDS = {
  atRest: { slot: (userId) => userId, algorithm: { name: "AES-GCM", length: 256 }, usages: ["encrypt", "decrypt"] },
  blindIndex: { slot: (userId) => `${userId}\0blind-index`, algorithm: { name: "HMAC", hash: "SHA-256", length: 256 }, usages: ["sign"] },
};

let opening = null;

function openDb() {
  opening ||= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 2);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
      if (!db.objectStoreNames.contains(KEYS)) db.createObjectStore(KEYS);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => {
      opening = null;
      reject(request.error);
    };
  });
  return opening;
}

function run(stores, mode, action) {
  return openDb().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(stores, mode);
    const request = action(tx);
    tx.oncomplete = () => resolve(request?.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

/**
 * The user's key of `kind`, made (non-extractable) the first time — or null when there is
 * none yet and `create` is false.
 */
async function userKey(kind, userId, create) {
  const { slot, algorithm, usages } = KINDS[kind];
  const held = await run(KEYS, "readonly", (tx) => tx.objectStore(KEYS).get(slot(userId)));
  if (held || !create) return held || null;
  const key = await crypto.subtle.generateKey(algorithm, false, usages);
  await run(KEYS, "readwrite", (tx) => tx.objectStore(KEYS).add(key, slot(userId))).catch(() => {});
  // Another tab may have stored its own first: the stored one is the key.
  return run(KEYS, "readonly", (tx) => tx.objectStore(KEYS).get(slot(userId)));
}

/** The AES-256-GCM key everything of the user's here is sealed under. */
export function atRestKey(userId, { create = true } = {}) {
  return userKey("atRest", userId, create);
}

/** The HMAC-SHA-256 key of the search index's blind keys (search_index.js). */
export function blindIndexKey(userId, { create = true } = {}) {
  return userKey("blindIndex", userId, create);
}

/** `value` as JSON sealed with AES-GCM under `key`, bound to `aad`: `{iv, data}`. */
export async function sealJson(key, value, aad) {
  const iv = randomBytes(IV_BYTES);
  return { iv, data: await aesGcmSealed(key, iv, utf8(JSON.stringify(value)), utf8(aad)) };
}

/** What `sealJson` sealed (DecryptionError if it was altered, or sealed under another key or aad). */
export async function openJson(key, { iv, data }, aad) {
  return JSON.parse(fromUtf8(await aesGcmOpened(key, iv, data, utf8(aad))));
}

/**
 * The state as JSON with its CryptoKeys set apart (they stay structured clones): byte
 * strings, Maps and keys are tagged so `revive` rebuilds the same shape.
 */
function flatten(value, keys) {
  if (value instanceof CryptoKey) return { $k: keys.push(value) - 1 };
  if (value instanceof Uint8Array) return { $b: b64encode(value) };
  if (value instanceof Map) return { $m: [...value].map(([k, v]) => [flatten(k, keys), flatten(v, keys)]) };
  if (Array.isArray(value)) return value.map((v) => flatten(v, keys));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, flatten(v, keys)]));
  }
  return value;
}

function revive(value, keys) {
  if (Array.isArray(value)) return value.map((v) => revive(v, keys));
  if (value && typeof value === "object") {
    if ("$k" in value) return keys[value.$k];
    if ("$b" in value) return b64decode(value.$b);
    if ("$m" in value) return new Map(value.$m.map(([k, v]) => [revive(k, keys), revive(v, keys)]));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, keys)]));
  }
  return value;
}

async function seal(userId, state) {
  const keys = [];
  const sealed = await sealJson(await atRestKey(userId), flatten(state, keys), `${SEALED}\0${userId}`);
  return { format: SEALED, keys, ...sealed };
}

async function open(userId, record) {
  if (!record || record.format !== SEALED) return record || null; // from before sealing: sealed at the next save
  return revive(await openJson(await atRestKey(userId), record, `${SEALED}\0${userId}`), record.keys);
}

/** The stored record as it is on disk (sealed): for tests and diagnostics. */
export function raw(userId) {
  return run(STORE, "readonly", (tx) => tx.objectStore(STORE).get(userId));
}

export async function load(userId) {
  return open(userId, await raw(userId));
}

export async function save(userId, state) {
  const record = await seal(userId, state);
  return run(STORE, "readwrite", (tx) => tx.objectStore(STORE).put(record, userId));
}

/** Forget the user's device here: the record and the keys that open it (and its search index's). */
export function remove(userId) {
  return run([STORE, KEYS], "readwrite", (tx) => {
    for (const { slot } of Object.values(KINDS)) tx.objectStore(KEYS).delete(slot(userId));
    return tx.objectStore(STORE).delete(userId);
  });
}

/**
 * Read-modify-write of a user's state, one at a time across this browser's tabs (Web
 * Locks): two tabs never hand out the same prekey id or fork a ratchet.
 */
export function transaction(userId, change) {
  return navigator.locks.request(`parley-e2ee:${userId}`, async () => {
    const state = (await load(userId)) || null;
    const result = await change(state);
    if (result?.state) await save(userId, result.state);
    return result?.value;
  });
}
