// Catching up with what happened while this client was not listening. On ready (each
// connect and reconnect): the conversation list it carries, deliveries to mark, the open
// conversation's members, the outbox. While the socket is down but HTTP works: a poll
// that reloads the list and fills the open conversation's gap. (Gaps in a tracked
// conversation after a resume are filled by the gateway itself: socket.js.)

import { State } from "../socket.js";
import { store } from "../store.js";
import { connection } from "./connection.js";
import { applyConversationList, loadConversations, loadMembers } from "./conversations.js";
import { pumpOutbox } from "./outbox.js";
import { markDeliveredAll } from "./receipts.js";

const POLL_MS = 8000; // while the socket is down but HTTP works

let pollTimer = null;

export async function catchUpOnReady(data) {
  if (data.user) store.setMe({ ...store.me, ...data.user });
  for (const p of presenceList(data.presences ?? data.presence)) store.setPresence(p.user_id, p);
  try {
    // ready carries the full conversation list, read after the event subscription:
    // nothing between it and the events that follow is missed.
    if (Array.isArray(data.conversations) && data.conversations.every((c) => c && c.type)) {
      applyConversationList(data.conversations);
    } else {
      await loadConversations();
    }
    markDeliveredAll();
    if (store.openConversationId && store.conversations.has(store.openConversationId)) {
      await loadMembers(store.openConversationId);
    }
  } catch {
    /* the poll tries again */
  }
  pumpOutbox();
}

export function startPolling() {
  pollTimer = setInterval(() => poll(), POLL_MS);
}

export function stopPolling() {
  clearInterval(pollTimer);
}

async function poll() {
  const state = connection.gateway?.state;
  if (!store.me || state === State.READY || state === State.STOPPED || navigator.onLine === false) return;
  if (document.visibilityState !== "visible") return;
  try {
    await loadConversations();
    const open = store.openConversationId;
    if (open && connection.gateway?.cursor(open) !== undefined) {
      await connection.gateway.fill(open);
      await loadMembers(open);
    }
    pumpOutbox();
  } catch {
    /* still down */
  }
}

function presenceList(presence) {
  if (!presence) return [];
  if (Array.isArray(presence)) return presence.filter((p) => p?.user_id);
  return Object.entries(presence).map(([user_id, value]) => (typeof value === "string" ? { user_id, status: value } : { user_id, ...value }));
}
