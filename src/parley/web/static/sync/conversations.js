// The conversation list, one conversation, its members and the followed threads, loaded
// over REST into the store. A conversation that is gone stops being tracked by the gateway.

import { api, ApiError } from "../api.js";
import { store } from "../store.js";
import { connection } from "./connection.js";

/** The followed threads and their unread counts (the "Threads" view and its badge). */
export async function loadThreads() {
  const { threads } = await api.threads({ limit: 100 });
  for (const thread of threads) {
    store.setThreadState(thread.state);
  }
  return threads;
}

export async function loadConversations() {
  applyConversationList(await api.conversations());
}

/** The full list (REST, or the gateway's ready): a timeline whose conversation is no longer
 * in it stops being tracked. */
export function applyConversationList(conversations) {
  store.setConversations(conversations);
  for (const id of [...store.timelines.keys()]) {
    if (!store.conversations.has(id)) connection.gateway?.untrack(id);
  }
}

export async function refreshConversation(id) {
  try {
    store.upsertConversation(await api.conversation(id));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      store.removeConversation(id);
      connection.gateway?.untrack(id);
    } else throw error;
  }
}

export async function loadMembers(id) {
  store.setMembers(id, await api.members(id));
}
