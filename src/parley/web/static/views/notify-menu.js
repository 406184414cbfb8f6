// The conversation's notification menu (DESIGN §6.2): level (all / mentions / nothing /
// the default) and mute (1 h, 8 h, until tomorrow, until turned back on), from a bell in
// the conversation header.

import { h, icon, toast } from "../dom.js";
import { LEVEL_LABEL, LEVELS, MUTES, effectiveLevel, isMuted, muteLabel, updateConversationSettings } from "../notify-prefs.js";
import { store } from "../store.js";
import { openMenu } from "./popover.js";

async function change(conversationId, changes, done) {
  try {
    await updateConversationSettings(conversationId, changes);
    toast(done);
  } catch (error) {
    toast(error.message, { error: true });
  }
}

function describe(conversation) {
  if (isMuted(conversation)) return muteLabel(conversation);
  return `Notifications: ${LEVEL_LABEL[effectiveLevel(conversation)]}`;
}

export function openNotificationMenu(anchor, conversationId) {
  const conversation = store.conversations.get(conversationId);
  if (!conversation) return null;
  const current = conversation.notify;
  const fallback = LEVEL_LABEL[store.me?.notify_default || "all"];
  const levelItem = (value, label) => ({
    label,
    icon: current === value ? "check" : null,
    onSelect: () => change(conversationId, { notify: value }, value ? `Notify: ${label}` : "Following your default"),
  });
  const items = [
    ...LEVELS.map(([value, label]) => levelItem(value, label)),
    levelItem(null, `Default (${fallback})`),
    "separator",
  ];
  if (isMuted(conversation)) {
    items.push({ label: "Unmute", icon: "bell", onSelect: () => change(conversationId, { muted_until: null }, "Unmuted") });
  } else {
    for (const mute of MUTES) {
      items.push({ label: `Mute ${mute.label.toLowerCase()}`, icon: "bellOff", onSelect: () => change(conversationId, { muted_until: mute.until() }, "Muted") });
    }
  }
  return openMenu(anchor, items, { label: "Notifications for this conversation" });
}

/** The header's bell: shows the state, opens the menu. */
export function notificationButton(conversationId) {
  const conversation = store.conversations.get(conversationId);
  const muted = isMuted(conversation);
  const label = describe(conversation);
  const button = h("button", {
    type: "button",
    class: ["icon-btn", "notify-btn", muted && "is-muted"],
    "aria-label": label,
    "aria-haspopup": "menu",
    title: label,
    dataset: { level: effectiveLevel(conversation), muted: muted ? "1" : "0" },
    onclick: () => openNotificationMenu(button, conversationId),
  }, icon(muted || effectiveLevel(conversation) === "none" ? "bellOff" : "bell"));
  return button;
}
