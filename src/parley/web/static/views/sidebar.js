// The sidebar: brand and account menu, search launcher, conversation filter, the list of
// conversations by activity (unread badges, previews, presence dots), and the footer.

import { avatar, formatStamp, groupAvatar, h, icon, iconButton, replaceChildren } from "../dom.js";
import { e2ee } from "../e2ee/engine.js";
import { plainText } from "../markdown.js";
import { conversationPath, navigate } from "../router.js";
import { store } from "../store.js";
import { logo } from "./brand.js";
import { newDirectDialog, newGroupDialog } from "./dialogs.js";
import { notificationPrompt } from "../notify.js";
import { isQuiet, mentionCount, unreadMarks } from "../notify-prefs.js";
import { openMenu } from "./popover.js";

export class Sidebar {
  constructor({ onLogout }) {
    this.onLogout = onLogout;
    this.filter = "";
    this.activeId = null;
    this.items = new Map();
    this.unsubscribe = [];
    this.list = h("ul", { class: "conv-list", role: "list" });
    this.empty = h("div", { class: "conv-empty" });
    this.filterInput = h("input", {
      type: "search",
      class: "input input-filter",
      placeholder: "Find a conversation",
      "aria-label": "Filter conversations",
      autocomplete: "off",
      oninput: () => {
        this.filter = this.filterInput.value.trim().toLowerCase();
        this.render();
      },
      onkeydown: (event) => {
        if (event.key === "Enter") {
          const first = this.list.querySelector(".conv-item");
          if (first) navigate(first.getAttribute("href"));
        } else if (event.key === "Escape") {
          this.filterInput.value = "";
          this.filter = "";
          this.render();
        }
      },
    });
    this.contactsBadge = h("span", { class: "badge badge-small", hidden: true });
    this.threadsBadge = h("span", { class: "badge badge-small", hidden: true });
    this.meButton = h("button", { type: "button", class: "me-button", "aria-label": "Your account", "aria-haspopup": "menu", onclick: () => this.accountMenu() });
    this.el = h("aside", { class: "sidebar", "aria-label": "Sidebar" },
      h("header", { class: "sidebar-head" },
        h("a", { class: "brand", href: "/", "data-route": "", "aria-label": "Parley home" }, logo(26), h("span", { class: "brand-name" }, "Parley")),
        this.meButton,
      ),
      h("div", { class: "sidebar-tools" },
        h("a", { class: "search-launch", href: "/search", "data-route": "", "aria-keyshortcuts": "Control+K" },
          icon("search", { size: 16 }), h("span", {}, "Search messages"), h("kbd", {}, "Ctrl K")),
        this.filterInput,
        h("div", { class: "sidebar-links" },
          h("a", { class: "foot-link", href: "/threads", "data-route": "" }, icon("thread", { size: 16 }), h("span", {}, "Threads"), this.threadsBadge),
          h("a", { class: "foot-link", href: "/directory", "data-route": "" }, icon("globe", { size: 16 }), h("span", {}, "Browse groups"))),
      ),
      h("div", { class: "sidebar-section" },
        h("h2", { class: "sidebar-section-title", id: "conversations-heading" }, "Conversations"),
        h("div", { class: "sidebar-section-actions" },
          iconButton("message", "New message", () => newDirectDialog()),
          iconButton("users", "New group", () => newGroupDialog()),
        ),
      ),
      h("nav", { class: "conv-nav", "aria-labelledby": "conversations-heading" }, this.list, this.empty),
      notificationPrompt(),
      h("footer", { class: "sidebar-foot" },
        h("a", { class: "foot-link", href: "/contacts", "data-route": "" }, icon("userPlus", { size: 16 }), h("span", {}, "Contacts"), this.contactsBadge),
        h("a", { class: "foot-link", href: "/settings", "data-route": "" }, icon("settings", { size: 16 }), h("span", {}, "Settings")),
        ["admin", "moderator"].includes(store.me?.role)
          ? h("a", { class: "foot-link", href: "/admin", "data-route": "" }, icon("shield", { size: 16 }), h("span", {}, "Admin"))
          : null,
      ),
    );
    this.list.addEventListener("keydown", (event) => this.keyNav(event));
    for (const topic of ["conversations", "presence", "users", "me", "outbox"]) {
      this.unsubscribe.push(store.on(topic, () => this.schedule()));
    }
    this.unsubscribe.push(store.on("threads", () => {
      const count = store.threadUnreadTotal();
      this.threadsBadge.hidden = !count;
      this.threadsBadge.textContent = String(count || "");
      this.threadsBadge.setAttribute("aria-label", `${count} new thread replies`);
    }));
    this.unsubscribe.push(store.on("incoming-requests", (count) => {
      this.contactsBadge.hidden = !count;
      this.contactsBadge.textContent = String(count || "");
      this.contactsBadge.setAttribute("aria-label", `${count} contact requests`);
    }));
    this.render();
  }

  destroy() {
    for (const off of this.unsubscribe) off();
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = null;
      this.render();
    });
  }

  render() {
    const me = store.me;
    if (me) {
      replaceChildren(this.meButton, avatar(me.id, me.display_name || me.username, { size: "sm", presence: "online" }));
      this.meButton.title = `${me.display_name} (@${me.username})`;
    }
    const conversations = store.sortedConversations().filter((c) => !this.filter || this.matches(c));
    const keep = new Set();
    let previous = null;
    for (const conversation of conversations) {
      keep.add(conversation.id);
      const item = this.item(conversation);
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== item) this.list.insertBefore(item, expected);
      previous = item;
    }
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.remove();
        if (!store.conversations.has(id)) this.items.delete(id);
      }
    }
    if (!store.conversationsLoaded) replaceChildren(this.empty, h("p", { class: "muted" }, "Loading conversations…"));
    else if (!store.conversations.size) {
      replaceChildren(this.empty,
        h("p", {}, "No conversations yet."),
        h("button", { type: "button", class: "btn btn-small", onclick: () => newDirectDialog() }, "Start one"));
    } else if (!conversations.length) replaceChildren(this.empty, h("p", { class: "muted" }, `Nothing matches “${this.filter}”.`));
    else replaceChildren(this.empty);
  }

  matches(conversation) {
    const title = store.title(conversation).toLowerCase();
    if (title.includes(this.filter)) return true;
    const peer = store.peerOf(conversation);
    return Boolean(peer?.username?.toLowerCase().includes(this.filter));
  }

  item(conversation) {
    const title = store.title(conversation);
    const peer = store.peerOf(conversation);
    const unread = conversation.unread_count || 0;
    const last = conversation.last_message;
    const pending = store.pendingIn(conversation.id);
    const preview = pending.length ? `You: ${plainText(pending[pending.length - 1].content)}` : previewText(last, conversation);
    const stamp = pending.length ? pending[pending.length - 1].created_at : last?.created_at || conversation.created_at;
    const presence = peer ? store.presenceOf(peer.id) : null;
    const quiet = isQuiet(conversation);
    const signature = [title, unread, preview, stamp, presence, this.activeId === conversation.id, pending.some((p) => p.state === "failed"), quiet, mentionCount(conversation), conversation.avatar?.small || "", Boolean(conversation.encrypted)].join("\u0000");
    let li = this.items.get(conversation.id);
    if (li && li.dataset.signature === signature) return li;
    const href = conversationPath(conversation.id);
    const label = `${title}${quiet ? ", muted" : ""}${unread ? `, ${unread} unread` : ""}${presence && presence !== "offline" ? `, ${presence}` : ""}`;
    const link = h("a", {
      class: ["conv-item", unread && !quiet && "is-unread", quiet && "is-muted", this.activeId === conversation.id && "is-active"],
      href,
      "data-route": "",
      "aria-label": label,
      "aria-current": this.activeId === conversation.id ? "page" : undefined,
      dataset: { conversationId: conversation.id },
    },
    peer ? avatar(peer.id, title, { presence }) : groupAvatar(conversation.id, title, { picture: conversation.avatar }),
    h("span", { class: "conv-main" },
      h("span", { class: "conv-top" },
        h("span", { class: "conv-name" }, title,
          conversation.encrypted ? h("span", { class: "conv-lock", title: "End-to-end encrypted" }, icon("lock", { size: 12, label: "End-to-end encrypted" })) : null),
        h("time", { class: "conv-time", datetime: stamp }, formatStamp(stamp))),
      h("span", { class: "conv-bottom" },
        h("span", { class: "conv-preview", dir: "auto" }, preview),
        ...unreadMarks(conversation, h))),
    );
    const fresh = h("li", { class: "conv-li", dataset: { signature } }, link);
    if (li) li.replaceWith(fresh);
    this.items.set(conversation.id, fresh);
    return fresh;
  }

  keyNav(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = [...this.list.querySelectorAll(".conv-item")];
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    links[(index + (event.key === "ArrowDown" ? 1 : -1) + links.length) % links.length].focus();
  }

  /** Alt+Up / Alt+Down anywhere: the previous / next conversation. */
  step(direction) {
    const ids = store.sortedConversations().map((c) => c.id);
    if (!ids.length) return;
    const index = ids.indexOf(this.activeId);
    const next = ids[(index + direction + ids.length) % ids.length] ?? ids[0];
    navigate(conversationPath(next));
  }

  accountMenu() {
    openMenu(this.meButton, [
      { label: "Profile and settings", icon: "settings", onSelect: () => navigate("/settings") },
      { label: "Contacts", icon: "userPlus", onSelect: () => navigate("/contacts") },
      "separator",
      { label: "Log out", icon: "logout", danger: true, onSelect: () => this.onLogout() },
    ], { label: "Account" });
  }
}

function previewText(message, conversation) {
  if (!message) return conversation.type === "group" ? `${conversation.member_count || 1} members` : "Say hello 👋";
  if (message.kind === "system") return systemText(message);
  if (message.deleted) return "Message deleted";
  const files = message.attachments || [];
  // Encrypted: the text only once this browser decrypted it (never from the server).
  const sealed = message.ciphertext && message.decrypted !== true;
  if (sealed && message.decrypted === undefined) e2ee.decryptSoon(message);
  const text = sealed ? "🔒 Encrypted message" : plainText(message.content) || (files.length ? `📎 ${files.length === 1 ? files[0].name || "Attachment" : `${files.length} files`}` : "");
  if (message.sender_id === store.me?.id) return `You: ${text}`;
  if (conversation.type === "group") return `${store.displayName(message.sender_id)}: ${text}`;
  return text;
}

/** "Alice added Bob", "Carol left", "Dan renamed the group to Ops"… */
export function systemText(message) {
  const event = message.system_event || {};
  const actor = event.actor_id === store.me?.id ? "You" : store.displayName(event.actor_id);
  const names = (event.user_ids || []).map((id) => (id === store.me?.id ? "you" : store.displayName(id)));
  const list = names.length <= 2 ? names.join(" and ") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  switch (event.type) {
    case "conversation.created":
      return `${actor} created the group`;
    case "member.added":
      return `${actor} added ${list}`;
    case "member.removed":
      return `${actor} removed ${list}`;
    case "member.left":
      return `${actor} left`;
    case "member.joined":
      return event.via === "invite" ? `${actor} joined with an invite link` : `${actor} joined`;
    case "message.pinned":
      return `${actor} pinned a message`;
    case "message.unpinned":
      return `${actor} unpinned a message`;
    case "member.role":
      return event.role === "owner" ? `${actor} made ${list} the owner` : event.role === "admin" ? `${actor} made ${list} an admin` : `${actor} made ${list} a member`;
    case "conversation.updated": {
      const changes = event.changes || {};
      if (changes.name) return `${actor} renamed the group to “${changes.name}”`;
      if ("topic" in changes) return `${actor} changed the topic`;
      if ("slug" in changes) return `${actor} changed the group's link`;
      if (changes.visibility) return changes.visibility === "public" ? `${actor} made the group public` : `${actor} made the group private`;
      if (changes.encrypted) return `${actor} turned on end-to-end encryption`;
      return `${actor} changed the group settings`;
    }
    default:
      return message.content || "Something changed";
  }
}
