// Notification preferences in the client (DESIGN §6.2): a conversation's level and mute,
// what "muted" and "quiet" mean for the list, and the server calls that change them.
// Other tabs and devices learn of a change by the events conversation.settings.updated and
// user.settings.updated, applied here.

import { api } from "./api.js";
import { store } from "./store.js";

export const LEVELS = [
  ["all", "All messages"],
  ["mentions", "Direct messages and @mentions"],
  ["none", "Nothing"],
];
export const LEVEL_LABEL = Object.fromEntries(LEVELS);

/** The mute choices of the conversation menu; `until()` gives the ISO time to send. */
export const MUTES = [
  { label: "For 1 hour", until: () => new Date(Date.now() + 3600e3).toISOString() },
  { label: "For 8 hours", until: () => new Date(Date.now() + 8 * 3600e3).toISOString() },
  { label: "Until tomorrow", until: () => tomorrowMorning().toISOString() },
  { label: "Until I turn it back on", until: () => "forever" },
];

/** 08:00 tomorrow, local time: "until tomorrow" means the start of the next working day. */
export function tomorrowMorning(now = new Date()) {
  const next = new Date(now);
  next.setDate(next.getDate() + 1);
  next.setHours(8, 0, 0, 0);
  return next;
}

export function isMuted(conversation, now = Date.now()) {
  const until = conversation?.muted_until;
  return Boolean(until) && Date.parse(until) > now;
}

/** The level in force: the conversation's own, else the user's default. */
export function effectiveLevel(conversation) {
  return conversation?.notify || store.me?.notify_default || "all";
}

/** Quiet: the list shows the unread count softly (muted, or not every message notifies). */
export function isQuiet(conversation) {
  return isMuted(conversation) || effectiveLevel(conversation) === "none";
}

/** Unread mentions worth showing even in a quiet conversation (a DM is all mentions). */
export function mentionCount(conversation) {
  const unread = conversation?.unread_count || 0;
  if (!unread) return 0;
  if (conversation.type === "direct") return unread;
  return Math.min(conversation.unread_mentions || 0, unread);
}

export function muteLabel(conversation) {
  if (!isMuted(conversation)) return "";
  const until = new Date(conversation.muted_until);
  if (until.getUTCFullYear() >= 9999) return "Muted";
  const sameDay = until.toDateString() === new Date().toDateString();
  const time = until.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  return sameDay ? `Muted until ${time}` : `Muted until ${until.toLocaleDateString([], { weekday: "short" })} ${time}`;
}

/** Whether a live message should alert this user (the in-page notification). */
export function alerts(message, conversation) {
  if (!conversation || isMuted(conversation)) return false;
  const level = effectiveLevel(conversation);
  if (level === "none") return false;
  if (level === "mentions") return conversation.type === "direct" || (message.mentions || []).includes(store.me?.id);
  return true;
}

function apply(settings) {
  const conversation = store.conversations.get(settings.conversation_id);
  if (!conversation) return;
  conversation.notify = settings.notify;
  conversation.muted_until = settings.muted_until;
  store.emit("conversations");
  store.emit(`conversation:${conversation.id}`, conversation);
}

export async function updateConversationSettings(conversationId, changes) {
  const result = await api.patch(`/conversations/${encodeURIComponent(conversationId)}/settings`, changes);
  apply(result.settings);
  return result.settings;
}

export async function loadDefaults() {
  return (await api.get("/users/me/notifications")).notifications;
}

export async function updateDefaults(changes) {
  const result = (await api.patch("/users/me/notifications", changes)).notifications;
  store.setMe({ ...store.me, ...result });
  store.emit("conversations");
  return result;
}

/** Keep conversations' settings and the defaults in step with other devices. */
export function startNotificationPrefs() {
  const offs = [
    store.on("conversation.settings.updated", apply),
    store.on("user.settings.updated", (defaults) => {
      store.setMe({ ...store.me, ...defaults });
      store.emit("conversations");
    }),
    store.on("incoming", (message) => {
      const conversation = store.conversations.get(message.conversation_id);
      if (!conversation) return;
      // The store counted this message already: alone unread, it starts a new count.
      if ((conversation.unread_count || 0) <= 1) conversation.unread_mentions = 0;
      if ((message.mentions || []).includes(store.me?.id)) {
        conversation.unread_mentions = (conversation.unread_mentions || 0) + 1;
      }
    }),
  ];
  return () => offs.forEach((off) => off());
}

/** The list's unread marks: a count (soft when quiet) and, when quiet, the mentions. */
export function unreadMarks(conversation, h) {
  const unread = conversation.unread_count || 0;
  if (!unread) return [];
  const text = (n) => (n > 99 ? "99+" : String(n));
  if (!isQuiet(conversation)) return [h("span", { class: "badge", "aria-hidden": "true" }, text(unread))];
  const mentions = mentionCount(conversation);
  return [
    mentions ? h("span", { class: "badge badge-mention", "aria-hidden": "true" }, `@${text(mentions)}`) : null,
    h("span", { class: "badge badge-quiet", "aria-hidden": "true" }, text(unread)),
  ];
}
