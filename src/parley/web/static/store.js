// Client state: who I am, people, conversations, loaded timelines, members and their
// receipt watermarks, typing, presence, the outbox of unsent messages, connection state.
//
// Views subscribe to topics and re-render what they show:
//   "conversations"            the list, its order, previews, unread counts
//   "conversation:<id>"        one conversation's settings / role / members count
//   "timeline:<id>"            messages of a loaded timeline (and its pending sends)
//   "members:<id>"             a member list or a watermark changed
//   "typing:<id>", "presence", "users", "connection", "contacts", "me"
// Messages are upserted by id and only replaced by an equal or newer version_seq, so the
// same change arriving by event, by ack and by gap fill is applied once.

export class Emitter {
  constructor() {
    this._topics = new Map();
  }

  on(topic, fn) {
    if (!this._topics.has(topic)) this._topics.set(topic, new Set());
    this._topics.get(topic).add(fn);
    return () => this._topics.get(topic)?.delete(fn);
  }

  emit(topic, payload) {
    for (const fn of [...(this._topics.get(topic) || [])]) {
      try {
        fn(payload);
      } catch (error) {
        console.error(`listener of ${topic} failed`, error);
      }
    }
  }
}

/** The loaded window of one conversation's history, in seq order. */
/** A reply that lives in its thread only (not shown in the conversation's timeline). */
export function threadOnly(message) {
  return Boolean(message.thread_root_id) && !message.thread_broadcast;
}

export class Timeline {
  constructor(conversationId) {
    this.conversationId = conversationId;
    this.messages = [];
    this.byId = new Map();
    this.loaded = false;
    this.hasOlder = true; // older messages exist before the first loaded one
    this.atLatest = true; // the window reaches the newest message
  }

  get first() { return this.messages[0]; }
  get last() { return this.messages[this.messages.length - 1]; }

  reset(messages, { hasOlder, atLatest }) {
    this.messages = messages.filter((m) => !threadOnly(m)).sort((a, b) => a.seq - b.seq);
    this.byId = new Map(this.messages.map((m) => [m.id, m]));
    this.hasOlder = hasOlder;
    this.atLatest = atLatest;
    this.loaded = true;
  }

  prepend(messages, hasOlder) {
    const fresh = messages.filter((m) => !this.byId.has(m.id) && !threadOnly(m));
    for (const m of fresh) this.byId.set(m.id, m);
    this.messages = [...fresh, ...this.messages].sort((a, b) => a.seq - b.seq);
    this.hasOlder = hasOlder;
  }

  append(messages, atLatest) {
    for (const m of messages) this.upsert(m, true);
    this.atLatest = atLatest;
  }

  /** Retention removed every message at or below `seq`: drop them. Returns how many. */
  dropThrough(seq) {
    const kept = this.messages.filter((m) => m.seq > seq);
    const dropped = this.messages.length - kept.length;
    if (!dropped) return 0;
    for (const m of this.messages) if (m.seq <= seq) this.byId.delete(m.id);
    this.messages = kept;
    this.hasOlder = false; // nothing older than what was just dropped remains
    return dropped;
  }

  /** Insert or replace; returns "inserted", "updated" or null when nothing changed. */
  upsert(message, force = false) {
    const existing = this.byId.get(message.id);
    if (existing) {
      if (message.version_seq < existing.version_seq) return null;
      const index = this.messages.indexOf(existing);
      this.messages[index] = message;
      this.byId.set(message.id, message);
      return "updated";
    }
    if (!this.loaded || threadOnly(message)) return null; // it shows in its thread
    const first = this.first;
    const last = this.last;
    const inside = !first || (message.seq > first.seq && message.seq < last.seq);
    const after = last && message.seq > last.seq;
    const before = first && message.seq < first.seq;
    if (!force && ((after && !this.atLatest) || (before && this.hasOlder) || (!first && !this.atLatest))) {
      return null; // outside the window: it is loaded when the window gets there
    }
    if (inside || after || before || force) {
      let index = this.messages.length;
      while (index > 0 && this.messages[index - 1].seq > message.seq) index--;
      this.messages.splice(index, 0, message);
      this.byId.set(message.id, message);
      return "inserted";
    }
    return null;
  }
}

export class Store extends Emitter {
  constructor() {
    super();
    this.reset();
  }

  reset() {
    this.me = null;
    this.users = new Map();
    this.conversations = new Map();
    this.conversationsLoaded = false;
    this.timelines = new Map();
    this.members = new Map();
    this.typing = new Map();
    this.presence = new Map();
    this.outbox = [];
    this.connection = { state: "idle", retryAt: 0 };
    this.incomingRequests = 0;
    this.openConversationId = null;
    this._countedSeq = new Map();
    this.threadStates = new Map(); // root id → {following, last_read_seq, unread_count, ...}
    this.openThreadId = null; // the thread panel on screen, if any
  }

  // --- people

  setMe(user) {
    const known = this.me;
    if (known?.id === user?.id && Number.isInteger(known?.profile_version) && Number.isInteger(user?.profile_version)
      && user.profile_version < known.profile_version) {
      // An older profile (see rememberUser): keep the newer name and picture.
      const { username, display_name, avatar, profile_version } = known;
      user = { ...user, username, display_name, avatar, profile_version };
    }
    this.me = user;
    this.rememberUser(user);
    this.emit("me", user);
  }

  rememberUser(user) {
    if (!user?.id) return;
    const known = this.users.get(user.id);
    // Answers and events can cross: a member list read before a rename may arrive after its
    // user.updated. Every profile carries the server's profile_version; the highest wins.
    const version = user.profile_version;
    if (Number.isInteger(version) && Number.isInteger(known?.profile_version) && version < known.profile_version) return;
    const merged = {
      ...known,
      id: user.id,
      username: user.username ?? known?.username,
      display_name: user.display_name ?? known?.display_name,
      is_bot: user.is_bot ?? known?.is_bot ?? false, // bot accounts (DESIGN §6.6) are marked as such
      // The profile picture's URLs (null: initials); absent from partial user objects.
      avatar: user.avatar !== undefined ? user.avatar : known?.avatar ?? null,
      profile_version: Number.isInteger(version) ? version : known?.profile_version,
    };
    if (known && known.username === merged.username && known.display_name === merged.display_name
      && known.is_bot === merged.is_bot && known.avatar?.small === merged.avatar?.small) {
      known.profile_version = merged.profile_version;
      return;
    }
    this.users.set(user.id, merged);
    this._usersChanged();
  }

  /** The user a member object (a conversation's members, its preview) shows. */
  rememberMember(member) {
    const { user_id: id, username, display_name, is_bot, avatar, profile_version } = member;
    this.rememberUser({ id, username, display_name, is_bot, avatar, profile_version });
  }

  _usersChanged() {
    if (this._usersTimer) return;
    this._usersTimer = setTimeout(() => {
      this._usersTimer = null;
      this.emit("users");
    }, 0);
  }

  displayName(userId) {
    if (!userId) return "Parley";
    if (userId === this.me?.id) return this.me.display_name || this.me.username;
    const user = this.users.get(userId);
    return user?.display_name || user?.username || "Unknown user";
  }

  usersByUsername() {
    const map = new Map();
    for (const user of this.users.values()) if (user.username) map.set(user.username.toLowerCase(), user);
    return map;
  }

  setPresence(userId, presence) {
    this.presence.set(userId, { ...this.presence.get(userId), ...presence });
    this.emit("presence", userId);
  }

  presenceOf(userId) {
    return this.presence.get(userId)?.status || "offline";
  }

  // --- conversations

  setConversations(list) {
    const seen = new Set();
    for (const conversation of list) {
      seen.add(conversation.id);
      this._storeConversation(conversation);
    }
    for (const id of [...this.conversations.keys()]) if (!seen.has(id)) this._forget(id);
    this.conversationsLoaded = true;
    this.emit("conversations");
  }

  upsertConversation(conversation) {
    this._storeConversation(conversation);
    this.emit("conversations");
    this.emit(`conversation:${conversation.id}`, conversation);
  }

  _storeConversation(conversation) {
    const known = this.conversations.get(conversation.id);
    const merged = { ...known, ...conversation };
    // A list fetched before a live message was applied must not roll the preview back.
    if (known?.last_message && (!merged.last_message || merged.last_message.seq < known.last_message.seq)) {
      merged.last_message = known.last_message;
      merged.last_seq = Math.max(merged.last_seq || 0, known.last_seq || 0);
    }
    // Retention removed messages while we were away (ready, or a refreshed conversation).
    const through = merged.expired_through_seq || 0;
    if (through > 0 && merged.last_message && merged.last_message.seq <= through) merged.last_message = null;
    this.conversations.set(conversation.id, merged);
    if (through > 0 && this.timelines.get(conversation.id)?.dropThrough(through)) {
      this.emit(`timeline:${conversation.id}`, { change: "expired" });
    }
    const counted = this._countedSeq.get(conversation.id) || 0;
    this._countedSeq.set(conversation.id, Math.max(counted, merged.last_seq || 0));
    for (const member of conversation.members || []) {
      this.rememberMember(member);
    }
    if (known && known.name !== merged.name) this.emit(`conversation:${conversation.id}`, merged);
  }

  removeConversation(id) {
    if (!this.conversations.has(id)) return;
    this._forget(id);
    this.emit("conversations");
  }

  _forget(id) {
    this.conversations.delete(id);
    this.timelines.delete(id);
    this.members.delete(id);
    this.emit(`conversation:${id}`, null);
  }

  /** Conversations by activity: the newest message (or creation) first. */
  sortedConversations() {
    const stamp = (c) => c.last_message?.created_at || c.created_at || "";
    return [...this.conversations.values()].sort((a, b) => (stamp(b) > stamp(a) ? 1 : stamp(b) < stamp(a) ? -1 : a.id < b.id ? -1 : 1));
  }

  /** The other person of a direct conversation. */
  peerOf(conversation) {
    if (!conversation || conversation.type !== "direct") return null;
    const fromMembers = [...(this.members.get(conversation.id)?.values() || [])].find((m) => m.user_id !== this.me?.id);
    const member = fromMembers || (conversation.members || []).find((m) => m.user_id !== this.me?.id);
    return member ? this.users.get(member.user_id) || { id: member.user_id, username: member.username, display_name: member.display_name } : null;
  }

  title(conversation) {
    if (!conversation) return "";
    if (conversation.type === "direct") {
      const peer = this.peerOf(conversation);
      return peer ? this.displayName(peer.id) : "Direct message";
    }
    return conversation.name || "Unnamed group";
  }

  totalUnread() {
    let total = 0;
    for (const c of this.conversations.values()) total += c.unread_count || 0;
    return total;
  }

  // --- messages

  timeline(conversationId) {
    if (!this.timelines.has(conversationId)) this.timelines.set(conversationId, new Timeline(conversationId));
    return this.timelines.get(conversationId);
  }

  /**
   * Apply a message from any source (event, ack, gap fill, REST answer). `live` marks a
   * newly created message from the event stream: it may count as unread.
   */
  applyMessage(message, { live = false } = {}) {
    const cid = message.conversation_id;
    const timeline = this.timelines.get(cid);
    const change = timeline ? timeline.upsert(message) : null;
    if (message.sender_id === this.me?.id && message.client_msg_id) this._settleOutbox(message);
    const conversation = this.conversations.get(cid);
    if (conversation) {
      conversation.last_seq = Math.max(conversation.last_seq || 0, message.version_seq || message.seq);
      const preview = conversation.last_message;
      if (threadOnly(message)) {
        // Not in the conversation: neither its preview nor its unread count (the thread's).
      } else if (!preview || message.seq > preview.seq || (message.id === preview.id && message.version_seq >= preview.version_seq)) {
        conversation.last_message = message;
      }
      const counted = this._countedSeq.get(cid) || 0;
      if (message.seq > counted) {
        this._countedSeq.set(cid, message.seq);
        const fromOther = message.sender_id && message.sender_id !== this.me?.id;
        if (live && fromOther && !threadOnly(message) && message.kind === "text" && !message.deleted && message.seq > (conversation.last_read_seq || 0)) {
          conversation.unread_count = (conversation.unread_count || 0) + 1;
        }
      }
      if (message.deleted && message.sender_id !== this.me?.id && message.seq > (conversation.last_read_seq || 0) && timeline?.byId.has(message.id) && change === "updated") {
        conversation.unread_count = Math.max(0, (conversation.unread_count || 0) - 1);
      }
      this.emit("conversations");
    }
    if (message.sender_id) this.clearTyping(cid, message.sender_id);
    if (change) this.emit(`timeline:${cid}`, { change, message });
    if (message.thread_root_id) this._threadReply(message, live);
    if (message.thread) this.emit(`thread:${message.id}`, { root: message });
    return change;
  }

  /**
   * Retention deleted every message of the conversation at or below `seq` (the
   * `messages.expired` event, or `expired_through_seq` in a changes page).
   */
  expire(conversationId, seq) {
    if (!Number.isInteger(seq) || seq <= 0) return;
    const conversation = this.conversations.get(conversationId);
    if (conversation) {
      if ((conversation.expired_through_seq || 0) >= seq && !this.timelines.get(conversationId)?.messages.some((m) => m.seq <= seq)) return;
      conversation.expired_through_seq = Math.max(conversation.expired_through_seq || 0, seq);
      if (conversation.last_message && conversation.last_message.seq <= seq) conversation.last_message = null;
      this.emit("conversations");
    }
    const dropped = this.timelines.get(conversationId)?.dropThrough(seq);
    if (dropped) this.emit(`timeline:${conversationId}`, { change: "expired" });
  }

  // --- threads (DESIGN §6.5): the caller's state of each thread they know of

  /** A thread state from the server (`thread.updated`, the thread listing). */
  setThreadState(state) {
    if (!state?.root_id) return;
    this.threadStates.set(state.root_id, { ...state });
    this.emit("threads", state);
    this.emit(`thread:${state.root_id}`, { state });
  }

  _threadReply(message, live) {
    const state = this.threadStates.get(message.thread_root_id);
    const fromOther = message.sender_id && message.sender_id !== this.me?.id;
    const counted = Math.max(state?.counted_seq || 0, state?.last_read_seq || 0);
    // The open thread panel reads it as it arrives (and marks it read on the server).
    const reading = this.openThreadId === message.thread_root_id && document.visibilityState === "visible";
    if (state && live && fromOther && !reading && !message.deleted && message.seq > counted) {
      state.counted_seq = message.seq; // each reply counted once (an ack and an event)
      state.unread_count = (state.unread_count || 0) + 1;
      this.emit("threads", state);
    }
    this.emit(`thread:${message.thread_root_id}`, { reply: message });
  }

  threadUnreadTotal() {
    let total = 0;
    for (const state of this.threadStates.values()) if (state.following) total += state.unread_count || 0;
    return total;
  }

  /** A reaction event: the message's reactions list and version, nothing else. */
  applyReactions(conversationId, messageId, reactions, seq) {
    const timeline = this.timelines.get(conversationId);
    const message = timeline?.byId.get(messageId);
    if (!message) {
      // Not in the timeline: maybe a reply shown in an open thread panel (views/thread.js).
      this.emit("reactions", { conversationId, messageId, reactions, seq });
      return;
    }
    if (Number.isInteger(seq) && seq < message.version_seq) return;
    this.applyMessage({ ...message, reactions, version_seq: Number.isInteger(seq) ? seq : message.version_seq });
  }

  findMessage(messageId) {
    for (const timeline of this.timelines.values()) {
      const found = timeline.byId.get(messageId);
      if (found) return found;
    }
    return null;
  }

  // --- members and receipts

  setMembers(conversationId, list) {
    const map = new Map();
    for (const member of list) {
      map.set(member.user_id, { ...member });
      this.rememberMember(member);
    }
    this.members.set(conversationId, map);
    const conversation = this.conversations.get(conversationId);
    if (conversation) {
      conversation.member_count = list.length;
      const mine = map.get(this.me?.id);
      if (mine) conversation.role = mine.role;
    }
    this.emit(`members:${conversationId}`);
  }

  applyReceipt(conversationId, userId, seq, kind) {
    const members = this.members.get(conversationId);
    const member = members?.get(userId);
    if (member) {
      if (kind === "read") member.last_read_seq = Math.max(member.last_read_seq || 0, seq);
      member.last_delivered_seq = Math.max(member.last_delivered_seq || 0, seq);
      this.emit(`members:${conversationId}`);
    }
    if (userId === this.me?.id && kind === "read") {
      const conversation = this.conversations.get(conversationId);
      if (conversation && seq > (conversation.last_read_seq || 0)) {
        conversation.last_read_seq = seq;
        if (seq >= (conversation.last_message?.seq || 0)) conversation.unread_count = 0;
        this.emit("conversations");
      }
    }
  }

  /** sent / delivered / read for my message: every other member's watermark passed it. */
  receiptState(message) {
    const members = this.members.get(message.conversation_id);
    if (!members) return { state: "sent", readBy: 0, deliveredTo: 0, others: 0 };
    const others = [...members.values()].filter((m) => m.user_id !== message.sender_id);
    const readBy = others.filter((m) => (m.last_read_seq || 0) >= message.seq).length;
    const deliveredTo = others.filter((m) => Math.max(m.last_delivered_seq || 0, m.last_read_seq || 0) >= message.seq).length;
    let state = "sent";
    if (others.length && readBy === others.length) state = "read";
    else if (others.length && deliveredTo === others.length) state = "delivered";
    return { state, readBy, deliveredTo, others: others.length };
  }

  // --- typing

  setTyping(conversationId, userId, active) {
    if (userId === this.me?.id) return;
    if (!this.typing.has(conversationId)) this.typing.set(conversationId, new Map());
    const people = this.typing.get(conversationId);
    clearTimeout(people.get(userId));
    if (active) {
      // A lost "stopped" must not leave someone typing forever.
      people.set(userId, setTimeout(() => this.setTyping(conversationId, userId, false), 8000));
    } else {
      if (!people.has(userId)) return;
      people.delete(userId);
    }
    this.emit(`typing:${conversationId}`);
  }

  clearTyping(conversationId, userId) {
    if (this.typing.get(conversationId)?.has(userId)) this.setTyping(conversationId, userId, false);
  }

  typingIn(conversationId) {
    return [...(this.typing.get(conversationId)?.keys() || [])];
  }

  // --- outbox (optimistic sends)

  addPending(entry) {
    this.outbox.push(entry);
    this._outboxChanged(entry.conversation_id);
  }

  updatePending(clientMsgId, changes) {
    const entry = this.outbox.find((e) => e.client_msg_id === clientMsgId);
    if (!entry) return;
    Object.assign(entry, changes);
    this._outboxChanged(entry.conversation_id);
  }

  removePending(clientMsgId) {
    const entry = this.outbox.find((e) => e.client_msg_id === clientMsgId);
    if (!entry) return;
    this.outbox = this.outbox.filter((e) => e !== entry);
    this._outboxChanged(entry.conversation_id);
  }

  pendingIn(conversationId) {
    return this.outbox.filter((e) => e.conversation_id === conversationId);
  }

  _settleOutbox(message) {
    if (this.outbox.some((e) => e.client_msg_id === message.client_msg_id)) this.removePending(message.client_msg_id);
  }

  _outboxChanged(conversationId) {
    this.emit("outbox");
    this.emit(`timeline:${conversationId}`, { change: "outbox" });
  }

  // --- connection

  setConnection(state) {
    this.connection = { ...this.connection, ...state };
    this.emit("connection", this.connection);
  }
}

export const store = new Store();
