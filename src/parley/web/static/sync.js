// The engine between the server and the store: loads conversations and history, applies
// gateway events, sends through an outbox (socket first, REST when the socket is down,
// idempotent by client_msg_id), marks delivered / read, and falls back to polling when the
// socket cannot connect at all.

import { api, ApiError, NetworkError } from "./api.js";
import { Gateway, GatewayError, GatewayUnavailable, State } from "./socket.js";
import { e2ee } from "./e2ee/engine.js";
import * as searchIndex from "./e2ee/search_index.js";
import { store } from "./store.js";

const PAGE = 50;
// Opening at the first unread message shows this many read ones above it, for context.
const UNREAD_CONTEXT = 5;
// More unread than this: open at the first unread instead of at the latest page.
export const OPEN_AT_UNREAD_AFTER = PAGE - UNREAD_CONTEXT;
const POLL_MS = 8000; // while the socket is down but HTTP works
const READ_THROTTLE_MS = 400;
const TYPING_REPEAT_MS = 3000;
const AWAY_AFTER_MS = 5 * 60 * 1000;
const RETRYABLE_CODES = new Set(["RATE_LIMITED", "UNAVAILABLE", "IDEMPOTENCY_CONFLICT"]);

export class Sync {
  constructor() {
    this.gateway = null;
    this._pumping = false;
    this._pumpTimer = null;
    this._pollTimer = null;
    this._readTimers = new Map();
    this._deliveredTimers = new Map();
    this._typingSent = new Map();
    this._loadingUsers = new Set();
    this._onOnline = () => this.pump();
    this._away = false;
    // Hidden for a while: tell others we're away; back in view: online again.
    this._onVisibility = () => {
      clearTimeout(this._awayTimer);
      if (document.visibilityState === "hidden") {
        this._awayTimer = setTimeout(() => this._setAway(true), AWAY_AFTER_MS);
      } else {
        this._setAway(false);
      }
    };
  }

  _setAway(away) {
    if (this._away === away) return;
    this._away = away;
    this.gateway?.notify("presence.set", { status: away ? "away" : "online" });
  }

  async start(me) {
    store.setMe(me);
    this._restoreOutbox();
    this.gateway = new Gateway({
      token: () => api.token(),
      refresh: () => api.refresh(),
      changes: (cid, after) => api.changes(cid, after),
      onEvent: (type, data) => this._event(type, data),
      onReady: (data) => this._ready(data),
      onState: (state) => this._state(state),
    });
    window.addEventListener("online", this._onOnline);
    document.addEventListener("visibilitychange", this._onVisibility);
    await this.loadConversations();
    this.loadThreads().catch(() => {});
    this.gateway.start();
    this._pollTimer = setInterval(() => this._poll(), POLL_MS);
    this.pump();
  }

  stop() {
    this.gateway?.stop();
    this.gateway = null;
    clearInterval(this._pollTimer);
    clearTimeout(this._pumpTimer);
    window.removeEventListener("online", this._onOnline);
    document.removeEventListener("visibilitychange", this._onVisibility);
    clearTimeout(this._awayTimer);
    this._away = false;
  }

  // --- loading

  /** The followed threads and their unread counts (the "Threads" view and its badge). */
  async loadThreads() {
    const { threads } = await api.threads({ limit: 100 });
    for (const thread of threads) {
      store.setThreadState(thread.state);
    }
    return threads;
  }

  async loadConversations() {
    store.setConversations(await api.conversations());
    for (const id of [...store.timelines.keys()]) {
      if (!store.conversations.has(id)) this.gateway?.untrack(id);
    }
  }

  async refreshConversation(id) {
    try {
      store.upsertConversation(await api.conversation(id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        store.removeConversation(id);
        this.gateway?.untrack(id);
      } else throw error;
    }
  }

  /** The latest page, unless the timeline is loaded already. */
  async openTimeline(id) {
    const timeline = store.timeline(id);
    if (timeline.loaded) return timeline;
    await this._loadLatest(id);
    return timeline;
  }

  async _loadLatest(id) {
    const timeline = store.timeline(id);
    const page = await api.history(id, { limit: PAGE });
    timeline.reset(page.messages, { hasOlder: page.has_more, atLatest: true });
    const newest = page.messages.reduce((max, m) => Math.max(max, m.version_seq, m.seq), 0);
    this.gateway?.untrack(id);
    this.gateway?.track(id, newest);
    store.emit(`timeline:${id}`, { change: "reset" });
    // What was applied while the page loaded (an acknowledged send, a live event) reached
    // the store before the timeline existed: fetch it again from where the page ends.
    const known = store.conversations.get(id)?.last_seq || 0;
    if (known > newest) this.gateway?.fill(id).catch(() => {});
    return timeline;
  }

  /** The page that starts just before the first unread message (more unread than a page
   * holds): older history loads upwards from there, newer downwards, and the "new messages"
   * divider stays where it belongs. */
  async openUnread(id, lastReadSeq) {
    const timeline = store.timeline(id);
    if (timeline.loaded) return timeline;
    const page = await api.history(id, { after_seq: Math.max(0, lastReadSeq - UNREAD_CONTEXT), limit: PAGE });
    timeline.reset(page.messages, { hasOlder: lastReadSeq - UNREAD_CONTEXT > 0, atLatest: !page.has_more });
    this.gateway?.track(id, store.conversations.get(id)?.last_seq || 0);
    store.emit(`timeline:${id}`, { change: "reset" });
    return timeline;
  }

  /** History around a message (deep links): the window may end before the latest. */
  async openAround(id, messageId) {
    const timeline = store.timeline(id);
    if (timeline.loaded && timeline.byId.has(messageId)) return timeline;
    const page = await api.history(id, { around_id: messageId, limit: PAGE });
    timeline.reset(page.messages, { hasOlder: page.has_more_before ?? page.has_more, atLatest: !page.has_more_after });
    this.gateway?.track(id, store.conversations.get(id)?.last_seq || 0);
    store.emit(`timeline:${id}`, { change: "reset" });
    return timeline;
  }

  async loadOlder(id) {
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

  async loadNewer(id) {
    const timeline = store.timeline(id);
    if (!timeline.loaded || timeline.atLatest || timeline.loadingNewer) return false;
    timeline.loadingNewer = true;
    try {
      const page = await api.history(id, { after_seq: timeline.last?.seq, limit: PAGE });
      timeline.append(page.messages, !page.has_more);
      store.emit(`timeline:${id}`, { change: "newer" });
      if (timeline.atLatest) this.gateway?.fill(id).catch(() => {});
      return true;
    } finally {
      timeline.loadingNewer = false;
    }
  }

  async jumpToLatest(id) {
    const timeline = store.timeline(id);
    if (timeline.loaded && timeline.atLatest) return timeline;
    return this._loadLatest(id);
  }

  async loadMembers(id) {
    store.setMembers(id, await api.members(id));
  }

  /** Names for sender ids we have never seen (former members, say). */
  ensureUsers(ids) {
    for (const id of ids) {
      if (!id || store.users.has(id) || this._loadingUsers.has(id)) continue;
      this._loadingUsers.add(id);
      api.user(id)
        .then((user) => store.rememberUser(user))
        .catch((error) => {
          // An erased account (docs/lifecycle.md) has no profile any more.
          if (error?.status === 404) store.rememberUser({ id, username: "", display_name: "Deleted user" });
        })
        .finally(() => this._loadingUsers.delete(id));
    }
  }

  // --- sending

  send(conversationId, content, replyTo = null, attachments = []) {
    const entry = {
      client_msg_id: newClientId(),
      conversation_id: conversationId,
      content,
      attachments,
      // Sealed files (views/composer.js) attach their thumbnails too.
      attachment_ids: attachments.flatMap((a) => a.e2ee_ids || [a.id]),
      reply_to_id: replyTo?.id || null,
      reply_to: replyTo ? { id: replyTo.id, sender_id: replyTo.sender_id, content: replyTo.content, deleted: replyTo.deleted } : null,
      sender_id: store.me.id,
      created_at: new Date().toISOString(),
      state: "sending",
      error: null,
    };
    store.addPending(entry);
    this._saveOutbox();
    this.pump();
    return entry;
  }

  /**
   * A reply in a thread (the thread panel): sent at once, not through the outbox (its pending
   * state belongs to the panel, not to the conversation's timeline), and sealed like any
   * other message when the conversation is encrypted. Resolves to the stored message.
   */
  sendThreadReply(conversationId, rootId, content, { attachments = [], broadcast = false } = {}) {
    return this._deliver({
      client_msg_id: newClientId(),
      conversation_id: conversationId,
      content,
      attachments, // sealed files carry their descriptions (views/composer.js)
      attachment_ids: attachments.flatMap((a) => a.e2ee_ids || [a.id]),
      thread_root_id: rootId,
      thread_broadcast: broadcast,
    });
  }

  retry(clientMsgId) {
    store.updatePending(clientMsgId, { state: "sending", error: null, retryAt: 0 });
    this._saveOutbox();
    this.pump();
  }

  discard(clientMsgId) {
    store.removePending(clientMsgId);
    this._saveOutbox();
  }

  /** Send queued messages in order; stops at the first that cannot go out yet. */
  async pump() {
    if (this._pumping || !store.me) return;
    this._pumping = true;
    clearTimeout(this._pumpTimer);
    try {
      for (;;) {
        const entry = store.outbox.find((e) => e.state !== "failed");
        if (!entry) break;
        if (entry.retryAt && entry.retryAt > Date.now()) {
          this._pumpTimer = setTimeout(() => this.pump(), entry.retryAt - Date.now());
          break;
        }
        store.updatePending(entry.client_msg_id, { state: "sending" });
        try {
          const message = await this._deliver(entry);
          store.removePending(entry.client_msg_id);
          store.applyMessage(message);
          this._saveOutbox();
        } catch (error) {
          if (error instanceof NetworkError || error instanceof GatewayUnavailable) {
            store.updatePending(entry.client_msg_id, { state: "queued" });
            this._pumpTimer = setTimeout(() => this.pump(), 5000);
            break;
          }
          if (RETRYABLE_CODES.has(error.code)) {
            const wait = Math.max(1, Number(error.retryAfter) || 2) * 1000;
            store.updatePending(entry.client_msg_id, { state: "queued", retryAt: Date.now() + wait });
            continue;
          }
          store.updatePending(entry.client_msg_id, { state: "failed", error: error.message || "Not sent" });
          this._saveOutbox();
        }
      }
    } finally {
      this._pumping = false;
    }
  }

  async _deliver(entry) {
    if (store.conversations.get(entry.conversation_id)?.encrypted) return this._deliverEncrypted(entry);
    const params = { conversation_id: entry.conversation_id, content: entry.content, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
    if (entry.reply_to_id) params.reply_to_id = entry.reply_to_id;
    const files = entry.attachment_ids || [];
    if (this.gateway?.ready && !files.length) {
      try {
        const data = await this.gateway.call("message.send", params);
        return data.message;
      } catch (error) {
        if (!(error instanceof GatewayUnavailable)) throw error;
        // No answer: the same client_msg_id over REST returns the message if it went in.
      }
    }
    const body = { content: entry.content, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
    if (entry.reply_to_id) body.reply_to_id = entry.reply_to_id;
    if (files.length) body.attachment_ids = files;
    return api.send(entry.conversation_id, body);
  }

  /**
   * An end-to-end encrypted send: the text is sealed in this browser (e2ee/engine.js) and
   * the server gets ciphertext only. The sealed form is kept with the entry, so a retry of
   * the same client_msg_id sends the same bytes (the server deduplicates on both).
   */
  async _deliverEncrypted(entry) {
    const files = entry.attachments || [];
    if (files.some((a) => !a.e2ee)) {
      // Picked before the conversation was encrypted: the server would refuse a plain upload.
      throw new Error("These files were uploaded unencrypted: remove them and attach them again");
    }
    const described = files.map((a) => a.e2ee);
    entry.sealed ||= await e2ee.encrypt(entry.conversation_id, entry.content, described);
    const params = { conversation_id: entry.conversation_id, ...entry.sealed, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
    if (entry.attachment_ids?.length) params.attachment_ids = entry.attachment_ids;
    if (entry.reply_to_id) params.reply_to_id = entry.reply_to_id;
    let message = null;
    if (this.gateway?.ready) {
      try {
        message = (await this.gateway.call("message.send", params)).message;
      } catch (error) {
        if (!(error instanceof GatewayUnavailable)) throw error;
      }
    }
    if (!message) {
      const { conversation_id: cid, ...body } = params;
      message = await api.send(cid, body);
    }
    // Our own text and files, as sealed: no need to decrypt them back.
    return { ...message, content: entry.content, e2ee_attachments: described, decrypted: true };
  }

  _saveOutbox() {
    if (!store.me) return;
    const key = `parley.outbox.${store.me.id}`;
    const keep = store.outbox.map(({ client_msg_id, conversation_id, content, reply_to_id, reply_to, created_at, sender_id, attachments, attachment_ids }) => ({ client_msg_id, conversation_id, content, reply_to_id, reply_to, created_at, sender_id, attachments, attachment_ids, state: "queued" }));
    try {
      if (keep.length) localStorage.setItem(key, JSON.stringify(keep));
      else localStorage.removeItem(key);
    } catch {
      /* storage full or disabled: the outbox still lives in memory */
    }
  }

  _restoreOutbox() {
    try {
      const saved = JSON.parse(localStorage.getItem(`parley.outbox.${store.me.id}`) || "[]");
      for (const entry of saved) if (entry.client_msg_id && entry.conversation_id) store.addPending(entry);
    } catch {
      /* unreadable: nothing to restore */
    }
  }

  // --- changing messages

  async edit(message, content) {
    if (message.ciphertext) {
      // An encrypted message is edited with new ciphertext (docs/e2ee.md), never text.
      // The files stay: their descriptions are sealed again with the new text.
      const files = message.e2ee_attachments || [];
      const sealed = await e2ee.encrypt(message.conversation_id, content, files);
      const path = `/messages/${encodeURIComponent(message.id)}`;
      const edited = await this._mutate("message.edit", { message_id: message.id, ...sealed }, () => api.patch(path, sealed).then((r) => r.message));
      store.applyMessage({ ...edited, content, e2ee_attachments: files, decrypted: true });
      return;
    }
    store.applyMessage(await this._mutate("message.edit", { message_id: message.id, content }, () => api.editMessage(message.id, content)));
  }

  async remove(message) {
    store.applyMessage(await this._mutate("message.delete", { message_id: message.id }, () => api.deleteMessage(message.id)));
  }

  async toggleReaction(message, emoji) {
    const mine = message.reactions?.some((r) => r.emoji === emoji && r.user_ids.includes(store.me.id));
    const result = mine ? await api.removeReaction(message.id, emoji) : await api.addReaction(message.id, emoji);
    store.applyMessage(result);
  }

  async _mutate(method, params, rest) {
    if (this.gateway?.ready) {
      try {
        const data = await this.gateway.call(method, params);
        if (data?.message) return data.message;
      } catch (error) {
        if (!(error instanceof GatewayUnavailable) && !(error instanceof GatewayError && error.code === "UNKNOWN_METHOD")) throw error;
      }
    }
    return rest();
  }

  // --- receipts

  /** Mark the conversation read up to its newest message (throttled). */
  markRead(id) {
    const conversation = store.conversations.get(id);
    if (!conversation) return;
    const timeline = store.timelines.get(id);
    const seq = Math.max(timeline?.atLatest ? timeline.last?.seq || 0 : 0, conversation.last_message?.seq || 0);
    if (!seq || seq <= (conversation.last_read_seq || 0)) {
      if (conversation.unread_count) {
        conversation.unread_count = 0;
        store.emit("conversations");
      }
      return;
    }
    conversation.last_read_seq = seq;
    conversation.unread_count = 0;
    store.emit("conversations");
    store.applyReceipt(id, store.me.id, seq, "read");
    clearTimeout(this._readTimers.get(id));
    this._readTimers.set(id, setTimeout(() => this._sendMark("read", id), READ_THROTTLE_MS));
  }

  /** After (re)connecting: whatever arrived while we were away is now delivered. */
  _markDeliveredAll() {
    for (const conversation of store.conversations.values()) {
      const last = conversation.last_message;
      if (last && last.sender_id !== store.me.id && last.seq > (conversation.last_delivered_seq || 0)) {
        this._deliveredSoon(conversation.id);
      }
    }
  }

  _deliveredSoon(id) {
    if (this._deliveredTimers.has(id)) return;
    this._deliveredTimers.set(id, setTimeout(() => {
      this._deliveredTimers.delete(id);
      this._sendMark("delivered", id);
    }, 300));
  }

  async _sendMark(kind, id) {
    const conversation = store.conversations.get(id);
    if (!conversation) return;
    const seq = kind === "read" ? conversation.last_read_seq : conversation.last_message?.seq || conversation.last_seq;
    if (!seq) return;
    if (kind === "delivered") {
      if (seq <= (conversation.last_delivered_seq || 0)) return;
      conversation.last_delivered_seq = seq;
    }
    try {
      if (this.gateway?.ready) await this.gateway.call(`${kind}.mark`, { conversation_id: id, seq });
      else if (kind === "read") await api.markRead(id, seq);
      else await api.markDelivered(id, seq);
    } catch (error) {
      if (error instanceof GatewayUnavailable) {
        try {
          await (kind === "read" ? api.markRead(id, seq) : api.markDelivered(id, seq));
        } catch {
          /* the next mark carries it */
        }
      }
    }
  }

  // --- typing

  typing(id, active) {
    if (!this.gateway?.ready) return;
    const last = this._typingSent.get(id) || 0;
    if (active) {
      if (Date.now() - last < TYPING_REPEAT_MS) return;
      this._typingSent.set(id, Date.now());
      this.gateway.notify("typing.start", { conversation_id: id });
    } else if (last) {
      this._typingSent.delete(id);
      this.gateway.notify("typing.stop", { conversation_id: id });
    }
  }

  // --- gateway

  _state(state) {
    // A failed refresh already told the app (api.onAuthLost); the gateway only stops.
    store.setConnection({ state, retryAt: this.gateway?.retryAt || 0 });
  }

  async _ready(data) {
    if (data.user) store.setMe({ ...store.me, ...data.user });
    for (const p of presenceList(data.presences ?? data.presence)) store.setPresence(p.user_id, p);
    try {
      // ready carries the full conversation list, read after the event subscription:
      // nothing between it and the events that follow is missed.
      if (Array.isArray(data.conversations) && data.conversations.every((c) => c && c.type)) {
        store.setConversations(data.conversations);
        for (const id of [...store.timelines.keys()]) if (!store.conversations.has(id)) this.gateway?.untrack(id);
      } else {
        await this.loadConversations();
      }
      this._markDeliveredAll();
      if (store.openConversationId && store.conversations.has(store.openConversationId)) {
        await this.loadMembers(store.openConversationId);
      }
    } catch {
      /* the poll tries again */
    }
    this.pump();
  }

  async _poll() {
    const state = this.gateway?.state;
    if (!store.me || state === State.READY || state === State.STOPPED || navigator.onLine === false) return;
    if (document.visibilityState !== "visible") return;
    try {
      await this.loadConversations();
      const open = store.openConversationId;
      if (open && this.gateway?.cursor(open) !== undefined) {
        await this.gateway.fill(open);
        await this.loadMembers(open);
      }
      this.pump();
    } catch {
      /* still down */
    }
  }

  _event(type, data) {
    const cid = data.conversation_id;
    switch (type) {
      case "message.created":
      case "message.updated":
      case "message.deleted":
      case "message.synced": {
        if (!data.message) return;
        if (!store.conversations.has(cid)) {
          this.refreshConversation(cid).catch(() => {});
        }
        const live = type === "message.created";
        // A message first seen through a gap fill is as new as a live one (the store
        // counts each seq once, so nothing is counted twice).
        store.applyMessage(data.message, { live: live || type === "message.synced" });
        if (data.message.deleted_at && store.conversations.get(cid)?.encrypted) searchIndex.remove(store.me.id, data.message.id).catch(() => {});
        if (live && data.message.sender_id && data.message.sender_id !== store.me.id) {
          this._deliveredSoon(cid);
          store.emit("incoming", data.message);
        }
        this.ensureUsers([data.message.sender_id]);
        if (data.message.kind === "system") this._systemEvent(cid, data.message);
        break;
      }
      case "reaction.added":
      case "reaction.removed":
        if (data.message) store.applyMessage(data.message);
        else if (data.reactions) store.applyReactions(cid, data.message_id, data.reactions, data.seq);
        break;
      case "typing.started":
      case "typing.stopped":
        store.setTyping(cid, data.user_id, type === "typing.started");
        break;
      case "presence.updated":
        store.setPresence(data.user_id, data);
        break;
      case "user.updated":
        if (data.user?.id === store.me?.id) store.setMe({ ...store.me, ...data.user });
        else store.rememberUser(data.user);
        break;
      case "receipt.delivered":
      case "receipt.read":
        store.applyReceipt(cid, data.user_id, data.seq, type === "receipt.read" ? "read" : "delivered");
        break;
      case "conversation.created":
      case "conversation.updated":
        this.refreshConversation(cid || data.conversation?.id).catch(() => {});
        break;
      case "conversation.deleted":
        store.removeConversation(cid);
        this.gateway?.untrack(cid);
        break;
      case "member.added":
      case "member.removed":
      case "member.updated":
        this._membershipEvent(type, data);
        break;
      case "contact.requested":
      case "contact.accepted":
      case "contact.removed":
        store.emit("contacts", data);
        break;
      case "messages.expired": // retention (docs/lifecycle.md)
        store.expire(cid, data.expired_through_seq);
        if (store.conversations.get(cid)?.encrypted) searchIndex.expire(store.me.id, cid, data.expired_through_seq).catch(() => {});
        break;
      case "export.updated": // progress of an export (views/settings.js)
        store.emit(type, data);
        break;
      case "thread.updated": // the caller's follow / read state of a thread (DESIGN §6.5)
        store.setThreadState(data);
        break;
      case "command.response": // a slash command's answer for this user only (views/slash_commands.js)
        store.emit("command.response", data);
        break;
      case "conversation.settings.updated": // notification level / mute (notify-prefs.js)
      case "user.settings.updated":
      case "report.resolved": // a report of the user's was decided (app.js tells them)
        store.emit(type, data);
        break;
      case "device.updated": // a contact's devices changed: verification may no longer hold
        store.emit("trust", data);
        break;
      case "to_device": // pairwise E2EE messages for this browser's device (docs/e2ee.md)
        if (data.device_id && data.device_id === e2ee.deviceId) e2ee.receiveToDevice(data.messages || []).catch(() => {});
        break;
      default:
        break;
    }
  }

  _membershipEvent(type, data) {
    const cid = data.conversation_id;
    const mine = (data.user_ids || []).includes(store.me.id);
    if (type === "member.removed" && mine) {
      store.removeConversation(cid);
      this.gateway?.untrack(cid);
      return;
    }
    if (mine || !store.conversations.has(cid)) {
      this.refreshConversation(cid).catch(() => {});
    } else {
      const conversation = store.conversations.get(cid);
      if (Number.isInteger(data.member_count)) conversation.member_count = data.member_count;
      store.emit(`conversation:${cid}`, conversation);
    }
    if (store.members.has(cid)) this.loadMembers(cid).catch(() => {});
  }

  _systemEvent(cid, message) {
    // The system message is the durable record; when typed events were missed (offline),
    // it still tells us that the membership or the settings changed.
    const event = message.system_event || {};
    if (String(event.type || "").startsWith("member.") && (event.user_ids || []).includes(store.me.id) && event.type !== "member.added") {
      if (event.type !== "member.role") {
        this.refreshConversation(cid).catch(() => {});
        return;
      }
    }
    if (store.members.has(cid) && String(event.type || "").startsWith("member.")) this.loadMembers(cid).catch(() => {});
    if (event.type === "conversation.updated") this.refreshConversation(cid).catch(() => {});
  }
}

function presenceList(presence) {
  if (!presence) return [];
  if (Array.isArray(presence)) return presence.filter((p) => p?.user_id);
  return Object.entries(presence).map(([user_id, value]) => (typeof value === "string" ? { user_id, status: value } : { user_id, ...value }));
}

/** A thread reply's fields of message.send (none for a message in the conversation). */
function threadFields(entry) {
  return entry.thread_root_id ? { thread_root_id: entry.thread_root_id, thread_broadcast: Boolean(entry.thread_broadcast) } : {};
}

function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const sync = new Sync();
