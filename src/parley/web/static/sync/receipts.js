// Read and delivered marks of this user: read when a conversation is seen at its newest
// message (throttled), delivered soon after a message from someone else arrives. Over the
// socket when it is ready, REST otherwise; a mark that fails is carried by the next one.

import { api } from "../api.js";
import { GatewayUnavailable } from "../socket.js";
import { store } from "../store.js";
import { connection } from "./connection.js";

const READ_THROTTLE_MS = 400;
const DELIVERED_DELAY_MS = 300;

const readTimers = new Map();
const deliveredTimers = new Map();

/** Mark the conversation read up to its newest message (throttled). */
export function markConversationRead(id) {
  const conversation = store.conversations.get(id);
  if (!conversation) return;
  const timeline = store.timelines.get(id);
  const seq = Math.max(timeline?.atLatest ? timeline.last?.seq || 0 : 0, conversation.last_message?.seq || 0);
  if (!seq || seq <= (conversation.last_read_seq || 0)) {
    if (conversation.unread_count) {
      conversation.unread_count = 0;
      store.emit("conversations");
    }
    return;
  }
  conversation.last_read_seq = seq;
  conversation.unread_count = 0;
  store.emit("conversations");
  store.applyReceipt(id, store.me.id, seq, "read");
  clearTimeout(readTimers.get(id));
  readTimers.set(id, setTimeout(() => sendMark("read", id), READ_THROTTLE_MS));
}

/** After (re)connecting: whatever arrived while we were away is now delivered. */
export function markDeliveredAll() {
  for (const conversation of store.conversations.values()) {
    const last = conversation.last_message;
    if (last && last.sender_id !== store.me.id && last.seq > (conversation.last_delivered_seq || 0)) {
      markDeliveredSoon(conversation.id);
    }
  }
}

/** A message from someone else arrived: delivered, once for a burst of them. */
export function markDeliveredSoon(id) {
  if (deliveredTimers.has(id)) return;
  deliveredTimers.set(id, setTimeout(() => {
    deliveredTimers.delete(id);
    sendMark("delivered", id);
  }, DELIVERED_DELAY_MS));
}

async function sendMark(kind, id) {
  const conversation = store.conversations.get(id);
  if (!conversation) return;
  const seq = kind === "read" ? conversation.last_read_seq : conversation.last_message?.seq || conversation.last_seq;
  if (!seq) return;
  if (kind === "delivered") {
    if (seq <= (conversation.last_delivered_seq || 0)) return;
    conversation.last_delivered_seq = seq;
  }
  try {
    if (connection.gateway?.ready) await connection.gateway.call(`${kind}.mark`, { conversation_id: id, seq });
    else if (kind === "read") await api.markRead(id, seq);
    else await api.markDelivered(id, seq);
  } catch (error) {
    if (error instanceof GatewayUnavailable) {
      try {
        await (kind === "read" ? api.markRead(id, seq) : api.markDelivered(id, seq));
      } catch {
        /* the next mark carries it */
      }
    }
  }
}
