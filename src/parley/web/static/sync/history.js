// Pages of message history into a conversation's timeline: the latest page, the page at
// the first unread message, the window around a message (deep links), older and newer
// pages while scrolling. Each opened timeline is tracked by the gateway from its newest seq.

import { api } from "../api.js";
import { store } from "../store.js";
import { connection } from "./connection.js";

const PAGE = 50;
// Opening at the first unread message shows this many read ones above it, for context.
const UNREAD_CONTEXT = 5;
// More unread than this: open at the first unread instead of at the latest page.
export const OPEN_AT_UNREAD_AFTER = PAGE - UNREAD_CONTEXT;

/** The latest page, unless the timeline is loaded already. */
export async function openTimeline(id) {
  const timeline = store.timeline(id);
  if (timeline.loaded) return timeline;
  await loadLatest(id);
  return timeline;
}

async function loadLatest(id) {
  const timeline = store.timeline(id);
  const page = await api.history(id, { limit: PAGE });
  timeline.reset(page.messages, { hasOlder: page.has_more, atLatest: true });
  const newest = page.messages.reduce((max, m) => Math.max(max, m.version_seq, m.seq), 0);
  connection.gateway?.untrack(id);
  connection.gateway?.track(id, newest);
  store.emit(`timeline:${id}`, { change: "reset" });
  // What was applied while the page loaded (an acknowledged send, a live event) reached
  // the store before the timeline existed: fetch it again from where the page ends.
  const known = store.conversations.get(id)?.last_seq || 0;
  if (known > newest) connection.gateway?.fill(id).catch(() => {});
  return timeline;
}

/** The page that starts just before the first unread message (more unread than a page
 * holds): older history loads upwards from there, newer downwards, and the "new messages"
 * divider stays where it belongs. */
export async function openUnread(id, lastReadSeq) {
  const timeline = store.timeline(id);
  if (timeline.loaded) return timeline;
  const page = await api.history(id, { after_seq: Math.max(0, lastReadSeq - UNREAD_CONTEXT), limit: PAGE });
  timeline.reset(page.messages, { hasOlder: lastReadSeq - UNREAD_CONTEXT > 0, atLatest: !page.has_more });
  connection.gateway?.track(id, store.conversations.get(id)?.last_seq || 0);
  store.emit(`timeline:${id}`, { change: "reset" });
  return timeline;
}

/** History around a message (deep links): the window may end before the latest. */
export async function openAround(id, messageId) {
  const timeline = store.timeline(id);
  if (timeline.loaded && timeline.byId.has(messageId)) return timeline;
  const page = await api.history(id, { around_id: messageId, limit: PAGE });
  timeline.reset(page.messages, { hasOlder: page.has_more_before ?? page.has_more, atLatest: !page.has_more_after });
  connection.gateway?.track(id, store.conversations.get(id)?.last_seq || 0);
  store.emit(`timeline:${id}`, { change: "reset" });
  return timeline;
}

export async function loadOlder(id) {
  const timeline = store.timeline(id);
  if (!timeline.loaded || !timeline.hasOlder || timeline.loadingOlder) return false;
  timeline.loadingOlder = true;
  try {
    const page = await api.history(id, { before_seq: timeline.first?.seq, limit: PAGE });
    timeline.prepend(page.messages, page.has_more);
    store.emit(`timeline:${id}`, { change: "older" });
    return true;
  } finally {
    timeline.loadingOlder = false;
  }
}

export async function loadNewer(id) {
  const timeline = store.timeline(id);
  if (!timeline.loaded || timeline.atLatest || timeline.loadingNewer) return false;
  timeline.loadingNewer = true;
  try {
    const page = await api.history(id, { after_seq: timeline.last?.seq, limit: PAGE });
    timeline.append(page.messages, !page.has_more);
    store.emit(`timeline:${id}`, { change: "newer" });
    if (timeline.atLatest) connection.gateway?.fill(id).catch(() => {});
    return true;
  } finally {
    timeline.loadingNewer = false;
  }
}

/** The latest page in place of a window that ends before it (a deep link, unread). */
export async function jumpToLatestPage(id) {
  const timeline = store.timeline(id);
  if (timeline.loaded && timeline.atLatest) return timeline;
  return loadLatest(id);
}
