// The message list of one conversation: day separators, sender grouping, the "new
// messages" divider, infinite scroll both ways, stick-to-bottom, jump to latest, deep-link
// highlight, inline editing and keyboard navigation between messages.
//
// Rendering is keyed: each row has a key and a signature; only rows whose signature changed
// are rebuilt, and the list is reordered in place, so hover state, focus and scroll position
// survive live updates.

import { api } from "../api.js";
import { dayKey, formatDay, h, icon } from "../dom.js";
import { store } from "../store.js";
import { jumpToLatestPage, loadNewer, loadOlder, OPEN_AT_UNREAD_AFTER, openAround, openTimeline, openUnread } from "../sync/history.js";
import { markConversationRead } from "../sync/receipts.js";
import { renderMessage } from "./message.js";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const EDGE_PX = 700; // load more when this close to either end
const BOTTOM_SLACK_PX = 48;

export class TimelineView {
  constructor(conversationId, actions) {
    this.id = conversationId;
    this.actions = actions;
    this.nodes = new Map();
    this.highlightId = null;
    this.editingId = null;
    this.unreadAfter = null;
    this.newBelow = 0;
    this.namesVersion = 0;
    this.loading = true;
    this.error = null;
    this.unsubscribe = [];
    this.top = h("div", { class: "timeline-top" });
    this.list = h("div", { class: "timeline-list" });
    this.bottom = h("div", { class: "timeline-bottom" });
    this.el = h("div", {
      class: "timeline",
      role: "log",
      "aria-label": "Messages",
      "aria-live": "polite",
      "aria-relevant": "additions",
      tabindex: "0",
    }, this.top, this.list, this.bottom);
    this.jumpButton = h("button", { type: "button", class: "jump-latest", hidden: true, onclick: () => this.jumpToLatest() },
      icon("down", { size: 16 }), h("span", { class: "jump-label" }, "Jump to latest"));
    this.el.addEventListener("scroll", () => this._onScroll(), { passive: true });
    // Whether the reader is at the bottom, as of their last scroll: a resize must not
    // change the answer (the scroll event a resize causes comes before this observer).
    this._atBottom = true;
    this._size = "";
    this._resizing = new ResizeObserver(() => this._onResize());
    this._resizing.observe(this.el);
    this._resizing.observe(this.list);
    this.el.addEventListener("keydown", (event) => this._keys(event));
    this.unsubscribe.push(
      store.on(`timeline:${conversationId}`, (info) => this._changed(info)),
      store.on(`members:${conversationId}`, () => this.schedule()),
      store.on("users", () => { this.namesVersion++; this.schedule(); }),
    );
    this._onVisible = () => this._maybeRead();
    document.addEventListener("visibilitychange", this._onVisible);
    window.addEventListener("focus", this._onVisible);
  }

  destroy() {
    for (const off of this.unsubscribe) off();
    document.removeEventListener("visibilitychange", this._onVisible);
    window.removeEventListener("focus", this._onVisible);
    cancelAnimationFrame(this._frame);
    this._resizing.disconnect();
  }

  get timeline() {
    return store.timeline(this.id);
  }

  /** First load: around a message (deep link) or the latest page. */
  async load({ messageId = null, unreadAfter = null, unreadCount = 0 } = {}) {
    this.loading = true;
    this.error = null;
    this.unreadAfter = unreadAfter;
    this.highlightId = messageId;
    this.render();
    try {
      if (messageId) {
        try {
          await openAround(this.id, messageId);
        } catch (error) {
          if (error?.status !== 404) throw error;
          this.highlightId = null;
          this.actions.missingMessage();
          await openTimeline(this.id);
        }
      } else if (unreadAfter !== null && unreadCount > OPEN_AT_UNREAD_AFTER) {
        await openUnread(this.id, unreadAfter);
      } else {
        await openTimeline(this.id);
      }
      this.loading = false;
      this.render({ position: this.highlightId ? "highlight" : "initial" });
    } catch (error) {
      this.loading = false;
      this.error = error;
      this.render();
    }
  }

  /** Scroll to a message (loading history around it when needed) and highlight it. */
  async focusMessage(messageId) {
    this.highlightId = messageId;
    if (!this.timeline.byId.has(messageId)) {
      this.loading = true;
      this.render();
      try {
        await openAround(this.id, messageId);
      } catch (error) {
        if (error?.status === 404) this.actions.missingMessage();
        this.highlightId = null;
      }
      this.loading = false;
    }
    this.render({ position: "highlight" });
  }

  clearHighlight() {
    if (!this.highlightId) return;
    this.highlightId = null;
    this.schedule();
  }

  async jumpToLatest() {
    this.actions.leaveDeepLink();
    this.highlightId = null;
    if (!this.timeline.atLatest) {
      this.loading = true;
      this.render();
      await jumpToLatestPage(this.id);
      this.loading = false;
    }
    this.newBelow = 0;
    this.render({ position: "bottom" });
    this.el.scrollTo({ top: this.el.scrollHeight, behavior: "smooth" });
  }

  startEdit(messageId) {
    this.editingId = messageId;
    this.render();
    const box = this.list.querySelector(".msg-editor textarea");
    if (box) {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  }

  stopEdit() {
    this.editingId = null;
    this.render();
  }

  clearUnreadDivider() {
    if (this.unreadAfter === null) return;
    this.unreadAfter = null;
    this.schedule();
  }

  schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = null;
      this.render();
    });
  }

  _changed(info) {
    if (info?.change === "inserted" && info.message?.kind === "text" && !this.isAtBottom() && info.message.sender_id !== store.me.id) {
      this.newBelow++;
    }
    if (info?.change === "inserted" && info.message?.sender_id === store.me.id) this._stick = true;
    if (info?.change === "outbox") this._stick = true;
    this.schedule();
  }

  // --- rendering

  isAtBottom() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < BOTTOM_SLACK_PX;
  }

  render({ position } = {}) {
    cancelAnimationFrame(this._frame);
    this._frame = null;
    const timeline = this.timeline;
    const stick = this._stick || (this.isAtBottom() && !this.highlightId);
    this._stick = false;
    const anchor = position ? null : this._anchor();
    this._renderEdges(timeline);
    this._reconcile(this._items(timeline));

    if (position === "highlight" && this.highlightId) {
      const target = this.nodes.get(`m:${this.highlightId}`);
      if (target) {
        target.scrollIntoView({ block: "center" });
        target.focus({ preventScroll: true });
      }
    } else if (position === "initial") {
      const divider = this.nodes.get("unread");
      if (divider) this.el.scrollTop = Math.max(0, divider.offsetTop - this.el.clientHeight / 3);
      else this.el.scrollTop = this.el.scrollHeight;
    } else if (position === "bottom" || (stick && timeline.atLatest)) {
      this.el.scrollTop = this.el.scrollHeight;
    } else if (anchor) {
      const node = this.nodes.get(anchor.key);
      if (node) this.el.scrollTop = node.offsetTop - anchor.offset;
    }
    this._atBottom = this.isAtBottom();
    this._size = this._sizeKey();
    this._updateJump();
    this._maybeRead();
    this._checkEdges();
  }

  _sizeKey() {
    return `${this.el.clientWidth}x${this.el.clientHeight}`;
  }

  _onResize() {
    const size = this._sizeKey();
    if (this._atBottom && this.timeline.atLatest && !this.highlightId) this.el.scrollTop = this.el.scrollHeight;
    this._size = size;
  }

  /** The first message row in view: it stays put while rows are added above or below.
   * (Only messages: a day separator or the intro moves to the top when older rows come.) */
  _anchor() {
    const top = this.el.scrollTop;
    for (const [key, node] of this.nodes) {
      if (!key.startsWith("m:")) continue;
      if (node.offsetTop + node.offsetHeight > top) return { key, offset: node.offsetTop - top };
    }
    return null;
  }

  _renderEdges(timeline) {
    this.top.replaceChildren();
    this.bottom.replaceChildren();
    if (this.error) {
      this.top.append(h("div", { class: "timeline-error", role: "alert" },
        h("p", {}, "Couldn't load messages."),
        h("button", { type: "button", class: "btn btn-small", onclick: () => this.load() }, "Try again")));
      return;
    }
    if (this.loading && !timeline.loaded) {
      this.top.append(skeleton());
      return;
    }
    if (timeline.loadingOlder || (timeline.hasOlder && timeline.loaded)) {
      this.top.append(h("div", { class: "timeline-loading", "aria-hidden": "true" }, h("span", { class: "spinner" })));
    }
    if (!timeline.atLatest) {
      this.bottom.append(h("div", { class: "timeline-loading", "aria-hidden": "true" }, h("span", { class: "spinner" })));
    }
  }

  _items(timeline) {
    const items = [];
    if (!timeline.loaded) return items;
    const conversation = store.conversations.get(this.id);
    if (!timeline.hasOlder) items.push({ key: "intro", sig: `${store.title(conversation)}|${this.namesVersion}`, build: () => intro(conversation) });
    const users = store.usersByUsername();
    const pending = timeline.atLatest ? store.pendingIn(this.id) : [];
    const lastOwn = [...timeline.messages].reverse().find((m) => m.sender_id === store.me.id && m.kind === "text" && !m.deleted);
    let previous = null;
    let dividerPlaced = false;
    const rows = [
      ...timeline.messages.map((m) => ({ message: m, pending: null })),
      ...pending.map((p) => ({ message: pendingMessage(p), pending: p })),
    ];
    for (const { message, pending: entry } of rows) {
      let breakGroup = false;
      if (!previous || dayKey(previous.created_at) !== dayKey(message.created_at)) {
        const day = dayKey(message.created_at);
        items.push({ key: `day:${day}`, sig: formatDay(message.created_at), build: () => daySeparator(message.created_at) });
        breakGroup = true;
      }
      if (!dividerPlaced && this.unreadAfter !== null && !entry && message.seq > this.unreadAfter && message.sender_id !== store.me.id && message.kind === "text") {
        items.push({ key: "unread", sig: "unread", build: () => h("div", { class: "unread-divider", role: "separator", "aria-label": "New messages" }, h("span", {}, "New messages")) });
        dividerPlaced = true;
        breakGroup = true;
      }
      const grouped = !breakGroup && previous && previous.kind === "text" && message.kind === "text"
        && previous.sender_id === message.sender_id && !message.reply_to && !previous.deleted
        && new Date(message.created_at) - new Date(previous.created_at) < GROUP_WINDOW_MS;
      const own = message.sender_id === store.me.id;
      const receipt = own && !entry && message.kind === "text" ? store.receiptState(message) : null;
      // A quoted original we hold is shown as it is now (edited or deleted since).
      const quoted = message.reply_to ? timeline.byId.get(message.reply_to.id) : null;
      const ctx = {
        quoted,
        conversation,
        grouped,
        highlighted: !entry && message.id === this.highlightId,
        editing: !entry && message.id === this.editingId,
        receipt,
        showReadBy: lastOwn && message.id === lastOwn.id,
        pending: entry,
        users,
        actions: this.actions,
      };
      const key = entry ? `p:${entry.client_msg_id}` : `m:${message.id}`;
      const sig = [
        message.version_seq, grouped, ctx.highlighted, ctx.editing, receipt?.state, receipt?.readBy,
        ctx.showReadBy, entry?.state, entry?.error, this.namesVersion, quoted?.version_seq, message.decrypted,
        message.key_requested, message.decryption_missing, quoted?.decrypted,
      ].join("|");
      items.push({ key, sig, build: () => renderMessage(message, ctx) });
      previous = message;
    }
    return items;
  }

  _reconcile(items) {
    const next = new Map();
    let cursor = this.list.firstChild;
    for (const item of items) {
      let node = this.nodes.get(item.key);
      if (!node || node._sig !== item.sig) {
        const fresh = item.build();
        fresh._sig = item.sig;
        fresh._key = item.key;
        if (node && node.parentNode === this.list) {
          if (cursor === node) cursor = fresh;
          this.list.replaceChild(fresh, node);
        }
        node = fresh;
      }
      next.set(item.key, node);
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    while (cursor) {
      const after = cursor.nextSibling;
      cursor.remove();
      cursor = after;
    }
    this.nodes = next;
  }

  // --- scrolling

  _onScroll() {
    if (this._sizeKey() === this._size) this._atBottom = this.isAtBottom();
    if (this._scrollFrame) return;
    this._scrollFrame = requestAnimationFrame(() => {
      this._scrollFrame = null;
      if (this.isAtBottom()) this.newBelow = 0;
      this._updateJump();
      this._maybeRead();
      this._checkEdges();
    });
  }

  _checkEdges() {
    const timeline = this.timeline;
    if (!timeline.loaded || this.loading) return;
    if (timeline.hasOlder && !timeline.loadingOlder && this.el.scrollTop < EDGE_PX) {
      loadOlder(this.id).catch(() => {});
    }
    const fromBottom = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight;
    if (!timeline.atLatest && !timeline.loadingNewer && fromBottom < EDGE_PX) {
      loadNewer(this.id).catch(() => {});
    }
  }

  _updateJump() {
    const timeline = this.timeline;
    const far = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight > this.el.clientHeight * 0.75;
    const show = timeline.loaded && (!timeline.atLatest || far || (this.newBelow > 0 && !this.isAtBottom()));
    this.jumpButton.hidden = !show;
    this.jumpButton.querySelector(".jump-label").textContent = this.newBelow > 0
      ? `${this.newBelow} new message${this.newBelow === 1 ? "" : "s"}`
      : "Jump to latest";
  }

  _maybeRead() {
    const timeline = this.timeline;
    if (!timeline.loaded || !timeline.atLatest || document.visibilityState !== "visible") return;
    if (!this.isAtBottom() && this.el.scrollHeight > this.el.clientHeight) return;
    markConversationRead(this.id);
  }

  // --- keyboard: arrows move between messages, Escape goes back to the composer

  _keys(event) {
    if (event.target.closest("textarea, input")) return;
    const rows = [...this.list.querySelectorAll(".msg, .msg-system")];
    if (!rows.length) return;
    const current = event.target.closest?.(".msg, .msg-system");
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      let index = current ? rows.indexOf(current) : rows.length;
      index += event.key === "ArrowUp" ? -1 : 1;
      const target = rows[Math.max(0, Math.min(rows.length - 1, index))];
      target.focus();
      target.scrollIntoView({ block: "nearest" });
    } else if (event.key === "Escape") {
      this.actions.focusComposer();
    } else if (event.key === "End" && !current) {
      this.jumpToLatest();
    }
  }
}

function pendingMessage(entry) {
  return {
    id: entry.client_msg_id,
    conversation_id: entry.conversation_id,
    seq: Number.MAX_SAFE_INTEGER,
    version_seq: 0,
    sender_id: entry.sender_id,
    kind: "text",
    content: entry.content,
    reply_to: entry.reply_to,
    reactions: [],
    mentions: [],
    attachments: entry.attachments || [],
    created_at: entry.created_at,
    edited_at: null,
    deleted: false,
  };
}

function daySeparator(iso) {
  return h("div", { class: "day-separator", role: "separator", "aria-label": formatDay(iso) }, h("span", {}, formatDay(iso)));
}

function intro(conversation) {
  if (!conversation) return h("div", { class: "timeline-intro" });
  const title = store.title(conversation);
  const direct = conversation.type === "direct";
  return h("div", { class: "timeline-intro" },
    h("div", { class: "intro-icon" }, icon(direct ? "message" : "hash", { size: 26 })),
    h("h2", { class: "intro-title" }, direct ? title : `Welcome to ${title}`),
    h("p", { class: "intro-text" }, direct
      ? `This is the beginning of your conversation with ${title}.`
      : `This is the very beginning of the ${title} group.`));
}

function skeleton() {
  return h("div", { class: "skeleton", "aria-label": "Loading messages", role: "status" },
    ...[0, 1, 2, 3].map((i) => h("div", { class: "skeleton-row" },
      h("span", { class: "skeleton-avatar" }),
      h("span", { class: "skeleton-lines" }, h("span", { class: `skeleton-line w${(i % 3) + 1}` }), h("span", { class: "skeleton-line w4" })))));
}

/** The receipts popover body: who has read and who has received a message. */
export async function receiptsList(message) {
  const data = await api.receipts(message.id);
  const section = (title, people) => h("div", { class: "receipts-section" },
    h("h3", { class: "receipts-title" }, `${title} (${people.length})`),
    people.length
      ? h("ul", { class: "receipts-people" }, people.map((u) => h("li", {}, u.display_name || u.username)))
      : h("p", { class: "muted" }, "No one yet"));
  const readIds = new Set(data.read_by.map((u) => u.id));
  return h("div", { class: "receipts" },
    section("Read by", data.read_by),
    section("Delivered to", data.delivered_to.filter((u) => !readIds.has(u.id))));
}
