// The thread panel beside a conversation (a full screen on phones): the root, its replies
// (GET /messages/{id}/thread), a reply box with "Also send to the conversation", follow /
// unfollow, and the read mark moved as replies are seen (DESIGN §6.5). Replies arrive live
// through the store (`thread:{root}` events from message.created / message.updated).

import { api } from "../api.js";
import { formatFull, formatTime, avatar, h, icon, iconButton, toast } from "../dom.js";
import { plainText, renderMarkdown } from "../markdown.js";
import { store } from "../store.js";
import { sendThreadReply } from "../sync/delivery.js";
import { editMessage, removeMessage, toggleReaction } from "../sync/message_actions.js";
import { confirmDialog } from "./dialogs.js";
import { openEmojiPicker } from "./emoji.js";
import { renderAttachments } from "./attachments.js";
import { Composer } from "./composer.js";

export class ThreadPanel {
  constructor(conversationId, rootId, { onClose }) {
    this.conversationId = conversationId;
    this.rootId = rootId;
    this.onClose = onClose;
    this.root = null;
    this.replies = new Map();
    this.state = store.threadStates.get(rootId) || null;
    this.list = h("ol", { class: "thread-replies", "aria-label": "Replies" });
    this.rootBox = h("div", { class: "thread-root" });
    this.followButton = h("button", { type: "button", class: "btn btn-small thread-follow", onclick: () => this.toggleFollow() }, "Follow");
    this.broadcast = h("input", { type: "checkbox", id: `thread-broadcast-${rootId}`, class: "thread-broadcast" });
    // The conversation's composer, as a reply box: formatting, @mentions, emoji, files, voice,
    // and "/" for the conversation's commands (run in the thread: runCommand()).
    this.composer = new Composer({
      conversationId,
      placeholder: "Reply in thread",
      label: "Thread reply",
      sendLabel: "Reply",
      idPrefix: `thread-${rootId}-`,
      draftKey: `${conversationId}.thread.${rootId}`,
      onSend: (content, _replyTo, attachments) => this.send(content, attachments),
      onCommand: (text) => this.runCommand(text),
    });
    this.input = this.composer.input;
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        this.onClose();
      }
    });
    this.el = h("aside", { class: "thread-panel", "aria-label": "Thread", tabindex: "-1" },
      h("header", { class: "details-head thread-head" },
        h("h2", { class: "details-title" }, icon("thread", { size: 16 }), " Thread"),
        this.followButton,
        iconButton("x", "Close thread", () => this.onClose())),
      h("div", { class: "thread-body" }, this.rootBox, this.list),
      h("div", { class: "thread-composer" },
        this.composer.el,
        h("label", { class: "thread-broadcast-label", for: `thread-broadcast-${rootId}` }, this.broadcast, " Also send to the conversation")));
    this.editing = null; // the id of the reply being edited
    const offThread = store.on(`thread:${rootId}`, (change) => this.onChange(change));
    const offReactions = store.on("reactions", ({ messageId, reactions, seq }) => {
      const reply = this.replies.get(messageId);
      if (reply && !(Number.isInteger(seq) && seq < reply.version_seq)) {
        this.onChange({ reply: { ...reply, reactions, version_seq: Number.isInteger(seq) ? seq : reply.version_seq } });
      }
    });
    this.off = () => { offThread(); offReactions(); };
    store.openThreadId = rootId;
    this.renderFollow();
  }

  destroy() {
    this.composer.destroy();
    this.off?.();
    this.destroyed = true;
    if (store.openThreadId === this.rootId) store.openThreadId = null;
  }

  async load() {
    try {
      const page = await api.thread(this.rootId, { limit: 100 });
      if (this.destroyed) return;
      this.root = page.root;
      for (const reply of page.messages) this.replies.set(reply.id, reply);
      store.setThreadState(page.state);
      this.render();
      this.markRead();
      this.input.focus();
    } catch (error) {
      this.rootBox.replaceChildren(h("p", { class: "muted", role: "alert" }, error.message || "Couldn't open this thread."));
    }
  }

  onChange({ reply, root, state }) {
    if (state) {
      this.state = state;
      this.renderFollow();
    }
    if (root && this.root && root.version_seq >= (this.root.version_seq || 0)) {
      this.root = root;
      this.renderRoot();
    }
    if (reply) {
      const known = this.replies.get(reply.id);
      if (known && reply.version_seq < known.version_seq) return;
      this.replies.set(reply.id, reply);
      this.renderReplies();
      this.markRead();
    }
  }

  render() {
    this.renderRoot();
    this.renderReplies();
    this.renderFollow();
  }

  renderRoot() {
    if (!this.root) return;
    const count = this.root.thread?.reply_count || 0;
    this.rootBox.replaceChildren(renderEntry(this.root),
      h("p", { class: "thread-count muted" }, count === 1 ? "1 reply" : `${count} replies`));
  }

  renderReplies() {
    const sorted = [...this.replies.values()].sort((a, b) => a.seq - b.seq);
    this.list.replaceChildren(...sorted.map((reply) => h("li", {}, this.entry(reply))));
    this.list.lastElementChild?.scrollIntoView?.({ block: "nearest" });
  }

  renderFollow() {
    const following = Boolean(this.state?.following);
    this.followButton.textContent = following ? "Following" : "Follow";
    this.followButton.setAttribute("aria-pressed", following ? "true" : "false");
    this.followButton.classList.toggle("is-active", following);
  }

  async toggleFollow() {
    try {
      store.setThreadState(await api.followThread(this.rootId, !this.state?.following));
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  /** A reply with its reactions and actions (react; edit and delete your own). */
  entry(reply) {
    if (reply.deleted) return renderEntry(reply);
    const own = reply.sender_id === store.me.id;
    if (this.editing === reply.id) return renderEntry(reply, this.editor(reply));
    const reactions = (reply.reactions || []).map((r) => {
      const mine = r.user_ids.includes(store.me.id);
      return h("button", {
        type: "button",
        class: ["reaction", mine && "is-mine"],
        "aria-pressed": mine ? "true" : "false",
        "aria-label": `${r.emoji} ${r.count}. ${mine ? "Remove your reaction" : "React too"}`,
        onclick: () => this.react(reply, r.emoji),
      }, h("span", { class: "reaction-emoji" }, r.emoji), h("span", { class: "reaction-count" }, String(r.count)));
    });
    const tools = h("div", { class: "thread-tools", role: "toolbar", "aria-label": "Reply actions" },
      iconButton("smile", "Add reaction", (event) => openEmojiPicker(event.currentTarget, (emoji) => this.react(reply, emoji))),
      own ? iconButton("edit", "Edit", () => { this.editing = reply.id; this.renderReplies(); }) : null,
      own ? iconButton("trash", "Delete", () => this.remove(reply)) : null);
    return renderEntry(reply, [reactions.length ? h("div", { class: "msg-reactions" }, reactions) : null, tools]);
  }

  editor(reply) {
    const box = h("textarea", { class: "input msg-editor-input", "aria-label": "Edit reply", rows: "2", dir: "auto" });
    box.value = reply.content;
    const stop = () => { this.editing = null; this.renderReplies(); };
    box.addEventListener("keydown", async (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        stop();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        const content = box.value;
        if (!content.trim() || content === reply.content) return stop();
        try {
          await editMessage(reply, content);
          stop();
        } catch (error) {
          toast(error.message, { error: true });
        }
      }
    });
    queueMicrotask(() => box.focus());
    return box;
  }

  async react(reply, emoji) {
    try {
      await toggleReaction(reply, emoji);
    } catch (error) {
      toast(error.message || "Couldn't react", { error: true });
    }
  }

  async remove(reply) {
    const ok = await confirmDialog({
      title: "Delete reply?",
      message: `“${plainText(reply.content).slice(0, 120)}” will be deleted for everyone.`,
      confirmLabel: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await removeMessage(reply);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async markRead() {
    const last = Math.max(0, ...[...this.replies.values()].map((r) => r.seq));
    const marked = Math.max(this.state?.last_read_seq || 0, this._marking || 0);
    if (!last || document.visibilityState !== "visible" || last <= marked) return;
    this._marking = last; // one request per new reply, however many events announce it
    try {
      store.setThreadState(await api.markThreadRead(this.rootId, last));
    } catch {
      this._marking = 0; // marked again with the next reply
    }
  }

  async send(content, attachments) {
    const broadcast = this.broadcast.checked;
    this.broadcast.checked = false;
    try {
      const message = await sendThreadReply(this.conversationId, this.rootId, content, { attachments, broadcast });
      store.applyMessage(message); // announces the reply to this panel too (thread:{root})
    } catch (error) {
      // The composer has been cleared: the text comes back for another try.
      if (!this.input.value) this.composer.insert(content);
      this.broadcast.checked = broadcast;
      toast(error.message || "Couldn't send the reply", { error: true });
    }
  }

  /** A slash command typed in the reply box runs in this thread: a posted answer is a reply
   * here; an answer for the caller only comes as a command.response note, shown by the
   * conversation beside; a refusal (an unknown command, bad arguments) keeps the text. */
  async runCommand(text) {
    try {
      const answer = await api.runCommand(this.conversationId, text, this.rootId);
      if (answer.message) store.applyMessage(answer.message, { live: true });
      else if (answer.response_type === "ephemeral" && answer.text) toast(answer.text, { error: Boolean(answer.error) });
    } catch (error) {
      if (!this.input.value) this.composer.insert(text);
      toast(error.message || "Couldn't run the command", { error: true });
    }
  }
}

/** One message of the thread: author, time and text (the thread's own compact form). */
function renderEntry(message, extra = null) {
  const author = store.displayName(message.sender_id);
  return h("div", { class: "thread-msg", id: `thread-message-${message.id}`, dataset: { messageId: message.id, seq: message.seq } },
    avatar(message.sender_id, author, { size: "sm" }),
    h("div", { class: "msg-main" },
      h("div", { class: "msg-head" },
        h("span", { class: "msg-author" }, author),
        // A bot's reply is marked as in the timeline (views/message.js).
        store.users.get(message.sender_id)?.is_bot ? h("span", { class: "tag bot-tag" }, "Bot") : null,
        h("time", { class: "msg-time", datetime: message.created_at, title: formatFull(message.created_at) }, formatTime(message.created_at)),
        message.thread_broadcast ? h("span", { class: "muted thread-also" }, " · also sent to the conversation") : null),
      message.deleted
        ? h("div", { class: "msg-text msg-tombstone" }, "This message was deleted")
        : message.content || !message.attachments?.length
          ? h("div", { class: "msg-text", dir: "auto" }, renderMarkdown(message.content || "", { users: new Map(), me: store.me.username.toLowerCase() }))
          : null,
      // Files, pictures and voice messages, as the timeline shows them.
      !message.deleted && message.attachments?.length ? renderAttachments(message.attachments, message) : null,
      extra));
}
