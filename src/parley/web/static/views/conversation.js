// The conversation screen: header, timeline, typing indicator, composer and the details
// panel — or a clear "you don't have access" view for conversations the user is not in.

import { api, ApiError } from "../api.js";
import { avatar, copyText, formatAgo, groupAvatar, h, icon, iconButton, toast } from "../dom.js";
import { plainText } from "../markdown.js";
import { setPageTitle } from "../notify.js";
import { conversationPath, messageUrl, navigate, threadPath } from "../router.js";
import { store, threadOnly } from "../store.js";
import { sendTyping } from "../sync/activity.js";
import { loadMembers } from "../sync/conversations.js";
import { editMessage, removeMessage, toggleReaction } from "../sync/message_actions.js";
import { discardPending, retryPending, sendMessage } from "../sync/outbox.js";
import { Composer } from "./composer.js";
import { CommandNotes } from "./slash_commands.js";
import { DetailsPanel } from "./details.js";
import { notificationButton } from "./notify-menu.js";
import { reportDialog } from "./report.js";
import { confirmDialog } from "./dialogs.js";
import { openEmojiPicker } from "./emoji.js";
import { openMenu, openPopover } from "./popover.js";
import { TimelineView, receiptsList } from "./timeline.js";
import { ThreadPanel } from "./thread.js";
import { TrustBanner } from "./trust_banner.js";
import { verifiedBadge } from "./verify.js";
import { forwardDialog } from "./forward.js";

export class ConversationView {
  constructor(conversationId) {
    this.id = conversationId;
    this.el = h("section", { class: "conversation", "aria-busy": "true" });
    this.unsubscribe = [];
    this.details = null;
    this.destroyed = false;
  }

  /** Show the conversation, at `messageId` when given. */
  async open(messageId = null) {
    let conversation = store.conversations.get(this.id);
    if (!conversation) {
      this.el.append(h("div", { class: "center-state" }, h("span", { class: "spinner" })));
      try {
        conversation = await api.conversation(this.id);
        store.upsertConversation(conversation);
      } catch (error) {
        if (this.destroyed) return;
        if (error instanceof ApiError && (error.status === 404 || error.status === 403)) this.showNoAccess();
        else this.showError(error);
        return;
      }
    }
    if (this.destroyed) return;
    // A link to a reply that lives in a thread shows its root, with the thread open.
    const inThread = messageId ? await this.threadOf(messageId) : null;
    if (this.destroyed) return;
    if (inThread) messageId = inThread;
    this.build(conversation);
    store.openConversationId = this.id;
    const unreadAfter = (conversation.unread_count || 0) > 0 ? conversation.last_read_seq || 0 : null;
    loadMembers(this.id).catch(() => {});
    const focusedBefore = document.activeElement;
    await this.timeline.load({ messageId, unreadAfter, unreadCount: conversation.unread_count || 0 });
    this.el.setAttribute("aria-busy", "false");
    // The composer takes the focus once history is in, unless the person already moved it
    // while history loaded (opened the emoji picker, started a search): never steal it.
    const untouched = document.activeElement === focusedBefore || document.activeElement === document.body;
    if (!messageId && untouched) this.composer.focus();
    if (inThread) this.openThread(inThread);
  }

  /** The root of `messageId` when it is a reply shown only in its thread, else null. */
  async threadOf(messageId) {
    let target = store.findMessage(messageId);
    if (!target) {
      try {
        target = await api.message(messageId);
      } catch {
        return null; // the timeline says the message is gone
      }
    }
    return target && threadOnly(target) && target.conversation_id === this.id ? target.thread_root_id : null;
  }

  /** The same conversation, another message (a quote click, a search result). */
  async showMessage(messageId) {
    if (!this.timeline) return this.open(messageId);
    const inThread = messageId ? await this.threadOf(messageId) : null;
    if (inThread) {
      await this.timeline.focusMessage(inThread);
      this.openThread(inThread);
      return;
    }
    if (messageId) await this.timeline.focusMessage(messageId);
    else this.timeline.clearHighlight();
  }

  destroy() {
    this.destroyed = true;
    for (const off of this.unsubscribe) off();
    this.timeline?.destroy();
    this.composer?.destroy();
    this.details?.destroy();
    this.thread?.destroy();
    this.trustBanner?.destroy();
    if (store.openConversationId === this.id) store.openConversationId = null;
  }

  /** The thread panel of `rootId` beside the timeline (a full screen on phones). */
  openThread(rootId) {
    if (this.destroyed || !this.timeline) return;
    if (this.thread?.rootId === rootId) return;
    this.closeThread({ keepUrl: true });
    if (this.details) this.toggleDetails(); // one side panel at a time
    this.thread = new ThreadPanel(this.id, rootId, { onClose: () => this.closeThread() });
    this.el.append(this.thread.el);
    this.el.classList.add("has-thread");
    const path = threadPath(this.id, rootId);
    if (location.pathname + location.search !== path) history.replaceState({}, "", path);
    this.thread.load();
  }

  closeThread({ keepUrl = false } = {}) {
    if (!this.thread) return;
    this.thread.destroy();
    this.thread.el.remove();
    this.thread = null;
    this.el.classList.remove("has-thread");
    if (!keepUrl && location.search.includes("thread=")) history.replaceState({}, "", conversationPath(this.id));
  }

  build(conversation) {
    this.timeline = new TimelineView(this.id, this.actions());
    this.composer = new Composer({
      conversationId: this.id,
      placeholder: composerPlaceholder(conversation),
      onSend: (content, replyTo, attachments) => this.send(content, replyTo, attachments),
      onTyping: (active) => sendTyping(this.id, active),
      onEditLast: () => this.editLast(),
      onCommand: (text) => this.runCommand(text),
    });
    this.notes = new CommandNotes();
    // An archived conversation (a site admin's act) is read-only: this note stands where
    // the composer was.
    this.archivedNote = h("p", { class: "archived-note", role: "status", hidden: true },
      icon("lock", { size: 16 }), " This conversation is archived: its history stays readable, but no one can send to it.");
    this.header = h("header", { class: "conv-header" });
    this.trustBanner = new TrustBanner(this.id, { onTrust: () => this.renderHeader() });
    this.typing = h("div", { class: "typing", "aria-live": "polite" });
    this.main = h("div", { class: "conv-main-col" },
      this.header,
      this.trustBanner.el,
      h("div", { class: "conv-body" }, this.timeline.el, this.timeline.jumpButton),
      this.typing,
      this.notes.el,
      this.archivedNote,
      this.composer.el);
    this.el.replaceChildren(this.main);
    this.renderHeader();
    this.unsubscribe.push(
      store.on(`conversation:${this.id}`, (value) => (value === null ? this.lostAccess() : this.renderHeader())),
      store.on(`typing:${this.id}`, () => this.renderTyping()),
      store.on("presence", () => this.renderHeader()),
      store.on(`members:${this.id}`, () => this.renderHeader()),
      store.on("users", () => this.renderHeader()),
      store.on("command.response", (answer) => {
        if (answer.conversation_id === this.id) this.notes.show(answer);
      }),
    );
  }

  /** A slash command: posted answers arrive as messages; the caller's own are notes. */
  async runCommand(text) {
    const command = text.slice(1).split(/\s/, 1)[0].toLowerCase();
    try {
      const answer = await api.runCommand(this.id, text);
      if (answer.response_type === "ephemeral") this.notes.show({ ...answer, command });
      else if (answer.message) store.applyMessage(answer.message, { live: true });
    } catch (error) {
      this.notes.show({ text: error.message, error: true, command });
    }
  }

  renderHeader() {
    const conversation = store.conversations.get(this.id);
    if (!conversation || !this.header) return;
    const title = store.title(conversation);
    setPageTitle(title);
    this.composer?.setPlaceholder(composerPlaceholder(conversation));
    const archived = Boolean(conversation.archived);
    this.archivedNote.hidden = !archived;
    if (this.composer) this.composer.el.hidden = archived;
    const peer = store.peerOf(conversation);
    let subtitle;
    if (peer) {
      const presence = store.presence.get(peer.id);
      subtitle = presence?.status === "online" ? "Online" : presence?.status === "away" ? "Away"
        : presence?.last_seen_at ? `Last seen ${formatAgo(presence.last_seen_at)}` : `@${peer.username || ""}`;
    } else {
      subtitle = [`${conversation.member_count || 0} members`, conversation.topic].filter(Boolean).join(" · ");
    }
    if (archived) subtitle = `Archived · ${subtitle}`;
    const group = conversation.type === "group";
    this.header.replaceChildren(
      h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations", title: "Back" }, icon("back")),
      peer ? avatar(peer.id, title, { presence: store.presenceOf(peer.id) }) : groupAvatar(conversation.id, title, { picture: conversation.avatar }),
      h("button", { type: "button", class: "conv-header-text", onclick: () => this.toggleDetails(), "aria-label": `Show details of ${title}` },
        h("h1", { class: "conv-title" }, title,
          conversation.encrypted ? h("span", { class: "conv-lock", title: "End-to-end encrypted" }, icon("lock", { size: 14, label: "End-to-end encrypted" })) : null,
          conversation.encrypted && this.trustBanner?.peerTrust?.verified ? verifiedBadge() : null),
        h("p", { class: "conv-subtitle" }, subtitle)),
      h("div", { class: "conv-header-actions" },
        iconButton("search", "Search in this conversation", () => navigate(`/search?conversation_id=${encodeURIComponent(this.id)}`)),
        notificationButton(this.id),
        iconButton(group ? "settings" : "users", group ? "Group settings" : "Conversation details", () => this.toggleDetails(), { class: this.details ? "is-active" : "" })),
    );
  }

  renderTyping() {
    const people = store.typingIn(this.id).map((id) => store.displayName(id));
    if (!people.length) {
      this.typing.replaceChildren();
      this.typing.classList.remove("is-active");
      return;
    }
    const text = people.length === 1 ? `${people[0]} is typing…`
      : people.length === 2 ? `${people[0]} and ${people[1]} are typing…`
        : "Several people are typing…";
    this.typing.classList.add("is-active");
    this.typing.replaceChildren(h("span", { class: "typing-dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")), h("span", { class: "typing-text" }, text));
  }

  toggleDetails() {
    if (!this.details) this.closeThread();
    if (this.details) {
      this.details.destroy();
      this.details.el.remove();
      this.details = null;
      this.el.classList.remove("has-details");
    } else {
      this.details = new DetailsPanel(this.id, { onClose: () => this.toggleDetails() });
      this.el.append(this.details.el);
      this.el.classList.add("has-details");
      this.details.el.focus();
    }
    this.renderHeader();
  }

  send(content, replyTo, attachments = []) {
    sendMessage(this.id, content, replyTo, attachments);
    this.timeline.clearUnreadDivider();
    if (this.timeline.highlightId || !this.timeline.timeline.atLatest) this.timeline.jumpToLatest();
  }

  editLast() {
    const timeline = store.timeline(this.id);
    const mine = [...timeline.messages].reverse().find((m) => m.sender_id === store.me.id && m.kind === "text" && !m.deleted);
    if (mine) this.timeline.startEdit(mine.id);
  }

  actions() {
    return {
      reply: (message) => this.composer.setReply(message),
      edit: (message) => this.timeline.startEdit(message.id),
      editor: (message) => this.editor(message),
      react: (message, emoji) => this.react(message, emoji),
      pickReaction: (message, anchor) => openEmojiPicker(anchor, (emoji) => this.react(message, emoji)),
      menu: (message, anchor) => this.messageMenu(message, anchor),
      showReceipts: (message, anchor) => this.showReceipts(message, anchor),
      jumpTo: (messageId) => navigate(conversationPath(this.id, messageId)),
      retry: (entry) => retryPending(entry.client_msg_id),
      discard: (entry) => discardPending(entry.client_msg_id),
      missingMessage: () => toast("That message doesn't exist anymore.", { error: true }),
      leaveDeepLink: () => {
        if (location.pathname !== conversationPath(this.id)) history.replaceState({}, "", conversationPath(this.id));
      },
      focusComposer: () => this.composer.focus(),
      openThread: (rootId) => this.openThread(rootId),
    };
  }

  async react(message, emoji) {
    try {
      await toggleReaction(message, emoji);
    } catch (error) {
      toast(error.message || "Couldn't react", { error: true });
    }
  }

  messageMenu(message, anchor) {
    const own = message.sender_id === store.me.id;
    const conversation = store.conversations.get(this.id);
    const canDelete = own || (conversation?.type === "group" && ["owner", "admin"].includes(conversation.role));
    const text = message.kind === "text" && !message.deleted;
    openMenu(anchor, [
      { label: "Reply", icon: "reply", onSelect: () => this.composer.setReply(message) },
      text && !message.thread_root_id ? { label: "Reply in thread", icon: "thread", onSelect: () => this.openThread(message.id) } : null,
      text ? { label: message.pinned ? "Unpin" : "Pin to conversation", icon: "pin", onSelect: () => this.pin(message, !message.pinned) } : null,
      text ? { label: "Forward…", icon: "forward", onSelect: () => forwardDialog(message) } : null,
      { label: "Copy link to message", icon: "link", onSelect: () => copyText(messageUrl(this.id, message.id)) },
      { label: "Copy text", icon: "copy", onSelect: () => copyText(message.content) },
      own ? { label: "Edit message", icon: "edit", onSelect: () => this.timeline.startEdit(message.id) } : null,
      own || message.deleted ? null : { label: "Report message", icon: "flag", onSelect: () => reportDialog(message) },
      canDelete ? "separator" : null,
      canDelete ? { label: "Delete message", icon: "trash", danger: true, onSelect: () => this.deleteMessage(message) } : null,
    ], { label: "Message actions" });
  }

  async pin(message, pinned) {
    try {
      store.applyMessage(await api.pin(message.id, pinned));
      toast(pinned ? "Pinned to the conversation" : "Unpinned");
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async deleteMessage(message) {
    const ok = await confirmDialog({
      title: "Delete message?",
      message: `“${plainText(message.content).slice(0, 120)}” will be deleted for everyone.`,
      confirmLabel: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await removeMessage(message);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  editor(message) {
    const box = h("textarea", { class: "input msg-editor-input", "aria-label": "Edit message", rows: "2", dir: "auto" });
    box.value = message.content;
    const save = async () => {
      const content = box.value;
      if (!content.trim()) return this.deleteMessage(message).then(() => this.timeline.stopEdit());
      if (content === message.content) return this.timeline.stopEdit();
      try {
        await editMessage(message, content);
        this.timeline.stopEdit();
        this.composer.focus();
      } catch (error) {
        toast(error.message, { error: true });
      }
    };
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.timeline.stopEdit();
        this.composer.focus();
      }
    });
    return h("div", { class: "msg-editor" }, box,
      h("div", { class: "msg-editor-actions" },
        h("span", { class: "muted" }, "Escape to cancel · Enter to save"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => { this.timeline.stopEdit(); this.composer.focus(); } }, "Cancel"),
        h("button", { type: "button", class: "btn btn-small btn-primary", onclick: save }, "Save")));
  }

  async showReceipts(message, anchor) {
    const body = h("div", { class: "receipts" }, h("span", { class: "spinner" }));
    openPopover(anchor, body, { className: "popover-receipts", label: "Message receipts" });
    try {
      body.replaceWith(await receiptsList(message));
    } catch {
      body.replaceChildren(h("p", { class: "muted" }, "Couldn't load receipts."));
    }
  }

  lostAccess() {
    this.destroyed = true;
    this.showNoAccess("You're no longer a member of this conversation.");
  }

  showNoAccess(reason) {
    this.timeline?.destroy();
    this.composer?.destroy();
    this.details?.destroy();
    this.details = null;
    setPageTitle("No access");
    this.el.setAttribute("aria-busy", "false");
    this.el.replaceChildren(noAccess(reason));
  }

  showError(error) {
    this.el.replaceChildren(h("div", { class: "center-state", role: "alert" },
      h("h2", {}, "Couldn't open this conversation"),
      h("p", { class: "muted" }, error?.message || "Something went wrong."),
      h("button", { type: "button", class: "btn", onclick: () => { this.el.replaceChildren(); this.open(); } }, "Try again")));
  }
}

function composerPlaceholder(conversation) {
  return `Message ${store.title(conversation)}`;
}

export function noAccess(reason) {
  return h("div", { class: "center-state no-access", role: "alert" },
    h("div", { class: "center-icon" }, icon("lock", { size: 28 })),
    h("h2", { class: "center-title" }, "You don't have access to this conversation"),
    h("p", { class: "muted" }, reason || "It may have been deleted, or you're not a member. Ask someone in it to add you."),
    h("a", { class: "btn btn-primary", href: "/", "data-route": "" }, "Back to your conversations"));
}
