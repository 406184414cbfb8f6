// The local search index of decrypted messages (DESIGN §6.1: search in encrypted
// conversations is client-side): every message this browser decrypts is filed in
// IndexedDB under its words and substrings (search_terms.js, the server's rules), and
// search.js merges what it finds here with the server's results. The server never sees
// the text or the query. One database per user; signing out deletes it, like drafts.
//
// Sealed at rest like the rest of this browser's E2EE state (idb.js): an entry's text and
// details are AES-256-GCM under the user's at-rest key, and the terms it is filed under
// are a blind index — HMAC-SHA-256 of each term under a second per-user non-extractable
// key, truncated — so the database holds no word, substring or text of a message. What a
// copy of the profile still shows: how many messages of which conversations are indexed,
// and which of them share a term (the same term blinds to the same key).

import { b64encode, hmacSha256Keyed, utf8 } from "./primitives.js";
import { atRestKey, blindIndexKey, openJson, sealJson } from "./idb.js";
import { candidateKeys, indexKeys, matches, parseQuery, highlights } from "./search_terms.js";

const STORE = "messages";
// 2: sealed entries under blind keys. Version 1 (text and terms in the clear) is dropped
// when the database is upgraded, not migrated: the index is a cache of what this browser
// decrypted, refilled as messages are decrypted again, and the upgrade cannot wait for
// WebCrypto to re-seal inside its transaction.
const VERSION = 2;
const SEALED = "parley-e2ee-search-v2"; // in every entry's aad, with the user, message and conversation
const BLIND_KEY_BYTES = 16; // 128 bits of the HMAC: a false candidate is never read in practice, and `matches` drops it anyway
const SNIPPET_CHARS = 300;
const READ_CHUNK = 100; // entries read (and opened) per transaction while searching
const opened = new Map(); // user id -> Promise<IDBDatabase>

const dbName = (userId) => `parley-e2ee-search:${userId}`;
const aad = (userId, id, conversationId) => `${SEALED}\0${userId}\0${id}\0${conversationId}`;

function open(userId) {
  if (opened.has(userId)) return opened.get(userId);
  const opening = new Promise((resolve, reject) => {
    const request = indexedDB.open(dbName(userId), VERSION);
    request.onupgradeneeded = (event) => {
      const db = request.result;
      if (event.oldVersion < 2 && db.objectStoreNames.contains(STORE)) db.deleteObjectStore(STORE);
      const store = db.createObjectStore(STORE, { keyPath: "id" });
      store.createIndex("keys", "keys", { multiEntry: true });
      store.createIndex("conversation", "conversation_id");
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading or deleting (signing out) the database waits for this one to close.
      db.onversionchange = () => {
        db.close();
        if (opened.get(userId) === opening) opened.delete(userId);
      };
      resolve(db);
    };
    request.onerror = () => {
      if (opened.get(userId) === opening) opened.delete(userId);
      reject(request.error);
    };
  });
  opened.set(userId, opening);
  return opening;
}

function run(userId, mode, action) {
  return open(userId).then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result?.result ?? result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

/** The blind index keys of `terms`: a truncated HMAC of each, base64url. */
function blinded(key, terms) {
  return Promise.all(terms.map(async (term) => b64encode((await hmacSha256Keyed(key, utf8(term))).slice(0, BLIND_KEY_BYTES))));
}

/** File a decrypted message (again after an edit: the entry is replaced). */
export async function add(userId, message) {
  if (!userId || !message?.id || message.deleted_at) return;
  const text = String(message.content || "");
  const details = {
    sender_id: message.sender_id,
    created_at: message.created_at,
    thread_root_id: message.thread_root_id || null,
    has_attachment: Boolean(message.attachments?.length),
    text,
  };
  const [sealed, keys] = await Promise.all([
    atRestKey(userId).then((key) => sealJson(key, details, aad(userId, message.id, message.conversation_id))),
    blindIndexKey(userId).then((key) => blinded(key, indexKeys(text))),
  ]);
  // In the clear: the id (the record's key; ids are time-ordered, so the newest candidates
  // are read first), the conversation and the seq (retention expiry drops a conversation's
  // entries up to a seq, in one cursor that cannot wait for decryption) — all of which the
  // server holds too. Everything else is in `data`.
  const entry = { id: message.id, conversation_id: message.conversation_id, seq: message.seq ?? null, keys, ...sealed };
  await run(userId, "readwrite", (store) => store.put(entry));
}

/** Drop a deleted (or expired) message. */
export function remove(userId, messageId) {
  if (!userId) return Promise.resolve();
  return run(userId, "readwrite", (store) => store.delete(messageId));
}

/** `remove` once per page load for a deleted message seen again (re-renders are many). */
const forgotten = new Set();
export function forgetMessage(userId, messageId) {
  if (forgotten.has(messageId)) return;
  forgotten.add(messageId);
  remove(userId, messageId).catch(() => {});
}

/** Drop a conversation's messages up to `seq` (retention expired them on the server). */
export function expire(userId, conversationId, seq) {
  if (!userId) return Promise.resolve();
  return run(userId, "readwrite", (store) => {
    store.index("conversation").openCursor(IDBKeyRange.only(conversationId)).onsuccess = (event) => {
      const cursor = event.target.result;
      if (!cursor) return;
      if (cursor.value.seq !== null && cursor.value.seq <= seq) cursor.delete();
      cursor.continue();
    };
  });
}

/** Delete the user's whole index (sign-out). */
export function forget(userId) {
  opened.get(userId)?.then((db) => db.close()).catch(() => {});
  opened.delete(userId);
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(dbName(userId));
    request.onsuccess = request.onerror = request.onblocked = () => resolve();
  });
}

/** Ids of the messages filed under any of `keys` (blind). */
function idsFor(userId, keys) {
  return run(userId, "readonly", (store) => {
    const index = store.index("keys");
    const found = new Set();
    for (const key of keys) {
      index.getAllKeys(IDBKeyRange.only(key)).onsuccess = (event) => { for (const id of event.target.result) found.add(id); };
    }
    return { result: found };
  });
}

/** Stored entries with their sealed part opened; one that does not open (sealed under a key since deleted) is skipped. */
async function openEntries(userId, key, records) {
  const entries = await Promise.all(records.map(async (record) => {
    try {
      const details = await openJson(key, record, aad(userId, record.id, record.conversation_id));
      return { id: record.id, conversation_id: record.conversation_id, ...details };
    } catch {
      return null;
    }
  }));
  return entries.filter(Boolean);
}

/**
 * Messages matching `q` (the server's syntax and rules) and the search view's filters
 * (`conversation_id`, `sender_id`, `after` inclusive and `before` exclusive as YYYY-MM-DD,
 * `has`), newest first, as the search API's results: `{message_id, conversation_id,
 * created_at, sender_id, snippet, highlights, local: true}`.
 */
export async function search(userId, q, filters = {}, limit = 50) {
  const terms = parseQuery(q);
  if (!userId || !terms.length) return [];
  // No key yet: nothing was ever filed here (and none is made just to search).
  const blindKey = await blindIndexKey(userId, { create: false });
  if (!blindKey) return [];
  let ids = null;
  for (const term of terms) {
    const found = await idsFor(userId, await blinded(blindKey, candidateKeys(term)));
    ids = ids === null ? found : new Set([...ids].filter((id) => found.has(id)));
    if (!ids.size) return [];
  }
  const sealingKey = await atRestKey(userId, { create: false });
  if (!sealingKey) return [];
  const wanted = (e) => matches(e.text, terms)
    && (!filters.sender_id || e.sender_id === filters.sender_id)
    && (!filters.after || e.created_at >= filters.after)
    && (!filters.before || e.created_at < filters.before)
    && (filters.has !== "attachment" || e.has_attachment);
  // Message ids are time-ordered: the newest candidates are read first, a chunk at a time,
  // until `limit` match — a common word does not load (nor decrypt) the whole index.
  const ordered = [...ids].sort().reverse();
  const hits = [];
  for (let i = 0; i < ordered.length && hits.length < limit; i += READ_CHUNK) {
    const chunk = ordered.slice(i, i + READ_CHUNK);
    const records = await run(userId, "readonly", (store) => {
      const out = [];
      for (const id of chunk) store.get(id).onsuccess = (event) => { if (event.target.result) out.push(event.target.result); };
      return { result: out };
    });
    const inConversation = records.filter((r) => !filters.conversation_id || r.conversation_id === filters.conversation_id);
    hits.push(...(await openEntries(userId, sealingKey, inConversation)).filter(wanted));
  }
  return hits
    .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0))
    .slice(0, limit)
    .map((e) => {
      const snippet = Array.from(e.text).slice(0, SNIPPET_CHARS).join("");
      return { message_id: e.id, conversation_id: e.conversation_id, created_at: e.created_at, sender_id: e.sender_id, snippet, highlights: highlights(snippet, terms), local: true };
    });
}
