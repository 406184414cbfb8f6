// This browser's end-to-end encryption state in IndexedDB, one record per user. Records
// are structured clones: private keys stay non-extractable CryptoKeys (the browser keeps
// them, no script can read their bytes), byte strings stay Uint8Arrays.

const DB_NAME = "parley-e2ee";
const STORE = "devices";

let opening = null;

function openDb() {
  opening ||= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => {
      opening = null;
      reject(request.error);
    };
  });
  return opening;
}

function run(mode, action) {
  return openDb().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

export function load(userId) {
  return run("readonly", (store) => store.get(userId));
}

export function save(userId, state) {
  return run("readwrite", (store) => store.put(state, userId));
}

export function remove(userId) {
  return run("readwrite", (store) => store.delete(userId));
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
