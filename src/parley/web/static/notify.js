// The unread count in the document title, and desktop notifications for new messages
// while the tab is hidden. Permission is asked once, politely: a small card in the sidebar
// that the user answers (never a prompt on page load).

import { h, icon } from "./dom.js";
import { e2ee } from "./e2ee/engine.js";
import { plainText } from "./markdown.js";
import { alerts } from "./notify-prefs.js";
import { conversationPath, navigate } from "./router.js";
import { store } from "./store.js";

const ASKED_KEY = "parley.notifications.asked";
// How long a notification of an encrypted message waits for its decryption here before it
// says "New encrypted message" without text.
const DECRYPT_WAIT_MS = 3000;
let pageTitle = "Parley";

export function setPageTitle(title) {
  pageTitle = title ? `${title} · Parley` : "Parley";
  updateTitle();
}

export function updateTitle() {
  const unread = store.totalUnread();
  document.title = unread ? `(${unread > 99 ? "99+" : unread}) ${pageTitle}` : pageTitle;
}

function supported() {
  return typeof Notification !== "undefined";
}

function asked() {
  try {
    return localStorage.getItem(ASKED_KEY) === "1";
  } catch {
    return true;
  }
}

function rememberAsked() {
  try {
    localStorage.setItem(ASKED_KEY, "1");
  } catch {
    /* not remembered: the card shows again next time */
  }
}

export async function requestNotifications() {
  if (!supported()) return "unsupported";
  rememberAsked();
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

/** The sidebar card, or an empty placeholder when there is nothing to ask. */
export function notificationPrompt() {
  const card = h("div", { class: "notify-card", role: "region", "aria-label": "Desktop notifications" });
  if (!supported() || Notification.permission !== "default" || asked()) {
    card.hidden = true;
    return card;
  }
  const dismiss = () => {
    rememberAsked();
    card.hidden = true;
  };
  card.append(
    h("div", { class: "notify-card-icon" }, icon("bell", { size: 18 })),
    h("div", { class: "notify-card-body" },
      h("p", { class: "notify-card-title" }, "Get notified of new messages?"),
      h("p", { class: "notify-card-text" }, "Only while Parley is in the background."),
      h("div", { class: "notify-card-actions" },
        h("button", { type: "button", class: "btn btn-small btn-primary", onclick: async () => { await requestNotifications(); card.hidden = true; } }, "Turn on"),
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: dismiss }, "Not now"))),
  );
  return card;
}

/**
 * An encrypted message, once this browser decrypted it (or could not within `ms`): the
 * timeline decrypts it as it arrives (e2ee/engine.js decryptSoon), and says so with a
 * `timeline:<id>` "updated" event.
 */
function decryptedSoon(message, ms = DECRYPT_WAIT_MS) {
  if (!message.ciphertext || message.decrypted !== undefined) return Promise.resolve(message);
  return new Promise((resolve) => {
    let off = null;
    const done = () => {
      off?.();
      clearTimeout(timer);
      resolve(message);
    };
    const timer = setTimeout(done, ms);
    off = store.on(`timeline:${message.conversation_id}`, (change) => {
      if (change?.message?.id === message.id && change.message.decrypted !== undefined) {
        message = change.message;
        done();
      }
    });
    e2ee.decryptSoon(message);
  });
}

/** Called for every live message from someone else. */
export async function notifyIncoming(message) {
  if (!supported() || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  if (message.kind !== "text" || message.deleted) return;
  const conversation = store.conversations.get(message.conversation_id);
  if (!conversation || !alerts(message, conversation)) return; // muted, or not at this level
  message = await decryptedSoon(message);
  const sender = store.displayName(message.sender_id);
  const title = conversation.type === "group" ? `${sender} in ${store.title(conversation)}` : sender;
  try {
    const notification = new Notification(title, {
      // Encrypted: no text unless this browser already decrypted it (the server has none).
      body: message.ciphertext && message.decrypted !== true ? "New encrypted message" : plainText(message.content).slice(0, 200),
      tag: `conversation:${conversation.id}`, // the same tag as Web Push: one per conversation
      renotify: true,
    });
    notification.onclick = () => {
      window.focus();
      navigate(conversationPath(conversation.id));
      notification.close();
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

export function startNotifications() {
  const offs = [
    store.on("conversations", updateTitle),
    store.on("incoming", notifyIncoming),
  ];
  updateTitle();
  return () => offs.forEach((off) => off());
}
