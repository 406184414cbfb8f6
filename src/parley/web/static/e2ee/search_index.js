// The local search index of decrypted messages (DESIGN §6.1: search in encrypted
// conversations is client-side): every message this browser decrypts is filed in
// IndexedDB under its words and substrings (search_terms.js, the server's rules), and
// search.js merges what it finds here with the server's results. The server never sees
// the text or the query. One database per user; signing out deletes it, like drafts.

import { candidateKeys, indexKeys, matches, parseQuery, highlights } from "./search_terms.js";

const STORE = "messages";
const SNIPPET_CHARS = 300;
const opened = new Map(); // user id -> Promise<IDBDatabase>

const dbName = (userId) => `parley-e2ee-search:${userId}`;

function open(userId) {
  if (!opened.has(userId)) {
    opened.set(userId, new Promise((resolve, reject) => {
      const request = indexedDB.open(dbName(userId), 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "id" });
        store.createIndex("keys", "keys", { multiEntry: true });
        store.createIndex("conversation", "conversation_id");
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => {
        opened.delete(userId);
        reject(request.error);
      };
    }));
  }
  return opened.get(userId);
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

/** File a decrypted message (again after an edit: the entry is replaced). */
export function add(userId, message) {
  if (!userId || !message?.id || message.deleted_at) return Promise.resolve();
  const text = String(message.content || "");
  const entry = {
    id: message.id,
    conversation_id: message.conversation_id,
    sender_id: message.sender_id,
    created_at: message.created_at,
    seq: message.seq ?? null,
    thread_root_id: message.thread_root_id || null,
    has_attachment: Boolean(message.attachments?.length),
    text,
    keys: indexKeys(text),
  };
  return run(userId, "readwrite", (store) => store.put(entry));
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

function idsFor(userId, term) {
  return run(userId, "readonly", (store) => {
    const index = store.index("keys");
    const found = new Set();
    for (const key of candidateKeys(term)) {
      const range = key.prefix !== undefined ? IDBKeyRange.bound(key.prefix, key.prefix + "\uffff") : IDBKeyRange.only(key.exact);
      index.getAllKeys(range).onsuccess = (event) => { for (const id of event.target.result) found.add(id); };
    }
    return { result: found };
  });
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
  let ids = null;
  for (const term of terms) {
    const found = await idsFor(userId, term);
    ids = ids === null ? found : new Set([...ids].filter((id) => found.has(id)));
    if (!ids.size) return [];
  }
  const entries = await run(userId, "readonly", (store) => {
    const out = [];
    for (const id of ids) store.get(id).onsuccess = (event) => { if (event.target.result) out.push(event.target.result); };
    return { result: out };
  });
  return entries
    .filter((e) => matches(e.text, terms))
    .filter((e) => !filters.conversation_id || e.conversation_id === filters.conversation_id)
    .filter((e) => !filters.sender_id || e.sender_id === filters.sender_id)
    .filter((e) => !filters.after || e.created_at >= filters.after)
    .filter((e) => !filters.before || e.created_at < filters.before)
    .filter((e) => filters.has !== "attachment" || e.has_attachment)
    .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0))
    .slice(0, limit)
    .map((e) => {
      const snippet = Array.from(e.text).slice(0, SNIPPET_CHARS).join("");
      return { message_id: e.id, conversation_id: e.conversation_id, created_at: e.created_at, sender_id: e.sender_id, snippet, highlights: highlights(snippet, terms), local: true };
    });
}
