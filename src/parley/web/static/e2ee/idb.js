// This browser's end-to-end encryption state in IndexedDB, one record per user, encrypted at
// rest (docs/e2ee.md "In the web client"). Private keys stay non-extractable CryptoKeys
// (structured clones the browser keeps, no script can read their bytes); everything else —
// chain keys, ratchet roots, skipped message keys, trust records — is sealed with
// AES-256-GCM under a per-user key that is itself a non-extractable CryptoKey in the same
// database: it never leaves the browser, and deleting it shreds the record.

import { aesGcmSealed, aesGcmOpened, b64decode, b64encode, randomBytes, utf8, fromUtf8 } from "./primitives.js";

const DB_NAME = "parley-e2ee";
const STORE = "devices";
const KEYS = "keys"; // user id -> the at-rest AES-GCM CryptoKey (non-extractable)
const SEALED = "parley-e2ee-sealed-v1";

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

/** The user's at-rest key, made (non-extractable) the first time. */
async function atRestKey(userId) {
  const held = await run(KEYS, "readonly", (tx) => tx.objectStore(KEYS).get(userId));
  if (held) return held;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await run(KEYS, "readwrite", (tx) => tx.objectStore(KEYS).add(key, userId)).catch(() => {});
  // Another tab may have stored its own first: the stored one is the key.
  return run(KEYS, "readonly", (tx) => tx.objectStore(KEYS).get(userId));
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
  const json = JSON.stringify(flatten(state, keys));
  const iv = randomBytes(12);
  const data = await aesGcmSealed(await atRestKey(userId), iv, utf8(json), utf8(`${SEALED}\0${userId}`));
  return { format: SEALED, keys, iv, data };
}

async function open(userId, record) {
  if (!record || record.format !== SEALED) return record || null; // from before sealing: sealed at the next save
  const json = await aesGcmOpened(await atRestKey(userId), record.iv, record.data, utf8(`${SEALED}\0${userId}`));
  return revive(JSON.parse(fromUtf8(json)), record.keys);
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

/** Forget the user's device here: the record and the key that opens it. */
export function remove(userId) {
  return run([STORE, KEYS], "readwrite", (tx) => {
    tx.objectStore(KEYS).delete(userId);
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
