// The outbox: a message the user sends shows at once as pending (optimistic), then goes out
// in order, one at a time. No network: queued and tried again; rate limited or busy:
// tried again after the server's wait; refused: failed, kept for the user to retry or
// discard. Saved in localStorage per user, so a reload does not lose what was not sent.

import { NetworkError } from "../api.js";
import { GatewayUnavailable } from "../socket.js";
import { store } from "../store.js";
import { deliver, newClientId } from "./delivery.js";

const RETRYABLE_CODES = new Set(["RATE_LIMITED", "UNAVAILABLE", "IDEMPOTENCY_CONFLICT"]);
const OFFLINE_RETRY_MS = 5000;

let pumping = false;
let pumpTimer = null;

export function sendMessage(conversationId, content, replyTo = null, attachments = []) {
  const entry = {
    client_msg_id: newClientId(),
    conversation_id: conversationId,
    content,
    attachments,
    // Sealed files (views/composer.js) attach their thumbnails too.
    attachment_ids: attachments.flatMap((a) => a.e2ee_ids || [a.id]),
    reply_to_id: replyTo?.id || null,
    reply_to: replyTo ? { id: replyTo.id, sender_id: replyTo.sender_id, content: replyTo.content, deleted: replyTo.deleted } : null,
    sender_id: store.me.id,
    created_at: new Date().toISOString(),
    state: "sending",
    error: null,
  };
  store.addPending(entry);
  saveOutbox();
  pumpOutbox();
  return entry;
}

export function retryPending(clientMsgId) {
  store.updatePending(clientMsgId, { state: "sending", error: null, retryAt: 0 });
  saveOutbox();
  pumpOutbox();
}

export function discardPending(clientMsgId) {
  store.removePending(clientMsgId);
  saveOutbox();
}

/** Send queued messages in order; stops at the first that cannot go out yet. */
export async function pumpOutbox() {
  if (pumping || !store.me) return;
  pumping = true;
  clearTimeout(pumpTimer);
  try {
    for (;;) {
      const entry = store.outbox.find((e) => e.state !== "failed");
      if (!entry) break;
      if (entry.retryAt && entry.retryAt > Date.now()) {
        pumpTimer = setTimeout(() => pumpOutbox(), entry.retryAt - Date.now());
        break;
      }
      store.updatePending(entry.client_msg_id, { state: "sending" });
      try {
        const message = await deliver(entry);
        store.removePending(entry.client_msg_id);
        store.applyMessage(message);
        saveOutbox();
      } catch (error) {
        if (error instanceof NetworkError || error instanceof GatewayUnavailable) {
          store.updatePending(entry.client_msg_id, { state: "queued" });
          pumpTimer = setTimeout(() => pumpOutbox(), OFFLINE_RETRY_MS);
          break;
        }
        if (RETRYABLE_CODES.has(error.code)) {
          const wait = Math.max(1, Number(error.retryAfter) || 2) * 1000;
          store.updatePending(entry.client_msg_id, { state: "queued", retryAt: Date.now() + wait });
          continue;
        }
        store.updatePending(entry.client_msg_id, { state: "failed", error: error.message || "Not sent" });
        saveOutbox();
      }
    }
  } finally {
    pumping = false;
  }
}

/** Signed out: no retry is left scheduled. */
export function stopOutboxRetries() {
  clearTimeout(pumpTimer);
}

function saveOutbox() {
  if (!store.me) return;
  const key = `parley.outbox.${store.me.id}`;
  const keep = store.outbox.map(({ client_msg_id, conversation_id, content, reply_to_id, reply_to, created_at, sender_id, attachments, attachment_ids }) => ({ client_msg_id, conversation_id, content, reply_to_id, reply_to, created_at, sender_id, attachments, attachment_ids, state: "queued" }));
  try {
    if (keep.length) localStorage.setItem(key, JSON.stringify(keep));
    else localStorage.removeItem(key);
  } catch {
    /* storage full or disabled: the outbox still lives in memory */
  }
}

/** What the signed-in user left unsent (a reload, a crash) goes back in the outbox. */
export function restoreOutbox() {
  try {
    const saved = JSON.parse(localStorage.getItem(`parley.outbox.${store.me.id}`) || "[]");
    for (const entry of saved) if (entry.client_msg_id && entry.conversation_id) store.addPending(entry);
  } catch {
    /* unreadable: nothing to restore */
  }
}
