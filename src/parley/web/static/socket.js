// The real-time gateway client (DESIGN §2 "Real-time gateway protocol", docs/protocol.md):
// identify, heartbeat, reconnect with backoff, calls with refs, and resume — a seq cursor per
// tracked conversation, gaps filled through GET /conversations/{id}/changes, duplicates
// dropped. The JavaScript twin of the Python SDK's connection.
//
// States:  idle → connecting → ready ⇄ (waiting | offline) → … ;  any → stopped
//   connecting: socket opening or identify sent, no "ready" yet
//   waiting:    closed; the next attempt is scheduled (retryAt) with backoff
//   offline:    the browser says it has no network; we wait for its "online" event

import { CloseCode, SEQ_EVENTS } from "./protocol.js";

export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  READY: "ready",
  WAITING: "waiting",
  OFFLINE: "offline",
  STOPPED: "stopped",
});

// Backoff: 0.5 s doubling to 30 s, each delay drawn from [50 %, 100 %] so that clients of a
// restarted node do not all come back in the same millisecond.
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const IDENTIFY_TIMEOUT_MS = 10_000;
const DEFAULT_HEARTBEAT_MS = 25_000;
const CALL_TIMEOUT_MS = 15_000;
// SEQ_EVENTS (from the protocol schema): events whose data.seq is a position in the
// conversation's seq stream. (Receipt events carry a member's watermark in data.seq instead;
// typing and presence carry none.)
const DEDUPE_WINDOW = 2000;

/** The server answered a call with an error frame. */
export class GatewayError extends Error {
  constructor(error) {
    super(error?.message || "Request failed");
    this.name = "GatewayError";
    this.code = error?.code || "ERROR";
    this.details = error?.details || [];
    this.retryAfter = error?.retry_after;
  }
}

/** No answer: not connected, or the connection closed before the answer came. */
export class GatewayUnavailable extends Error {
  constructor(message = "Not connected") {
    super(message);
    this.name = "GatewayUnavailable";
  }
}

export class Gateway {
  /**
   * token():      Promise<string>, a valid access token
   * refresh():    Promise, forces a token refresh (after close code 4001 / 4002)
   * changes(cid, afterSeq): Promise<{messages, last_seq, has_more, next_after_seq}>
   * onEvent(type, data), onReady(data), onState(state)
   */
  constructor({ url, token, refresh, changes, onEvent, onReady, onState }) {
    this.url = url || defaultUrl();
    this._token = token;
    this._refresh = refresh;
    this._changes = changes;
    this._onEvent = onEvent || (() => {});
    this._onReady = onReady || (() => {});
    this._onState = onState || (() => {});
    this.state = State.IDLE;
    this.retryAt = 0;
    this.sessionId = null;
    this.attempt = 0;
    this.ws = null;
    this._refs = 0;
    this._pending = new Map();
    this._timers = {};
    this._cursors = new Map(); // conversation id → highest contiguous seq applied
    this._maxSeen = new Map();
    this._filling = new Map(); // conversation id → promise of the running fill
    this._seen = new Set();
    this._seenOrder = [];
    this._onOnline = () => this.reconnectNow();
    this._onOffline = () => this._goOffline();
    this._onVisible = () => {
      if (document.visibilityState === "visible" && this.state === State.WAITING) this.reconnectNow();
    };
  }

  start() {
    if (this.state !== State.IDLE && this.state !== State.STOPPED) return;
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    document.addEventListener("visibilitychange", this._onVisible);
    this._setState(State.IDLE);
    if (navigator.onLine === false) this._goOffline();
    else this._connect();
  }

  stop() {
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    document.removeEventListener("visibilitychange", this._onVisible);
    this._setState(State.STOPPED);
    this._teardown(1000, "client stopped");
    this._cursors.clear();
  }

  get ready() {
    return this.state === State.READY;
  }

  /** Skip the backoff wait (a "Reconnect now" button, the browser coming back online). */
  reconnectNow() {
    if (this.state === State.STOPPED || this.state === State.READY || this.state === State.CONNECTING) return;
    this.attempt = 0;
    this._connect();
  }

  // --- calls

  call(method, params, { timeout = CALL_TIMEOUT_MS } = {}) {
    if (this.state !== State.READY || !this.ws) return Promise.reject(new GatewayUnavailable());
    const ref = String(++this._refs);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        reject(new GatewayUnavailable("No answer in time"));
      }, timeout);
      this._pending.set(ref, { resolve, reject, timer });
      this._send({ op: "call", ref, method, params });
    });
  }

  /** Fire and forget (typing): errors are of no interest to the caller. */
  notify(method, params) {
    if (this.state === State.READY) this.call(method, params).catch(() => {});
  }

  // --- resume cursors

  /** Start tracking a conversation whose timeline is loaded, from `seq`. */
  track(conversationId, seq) {
    const current = this._cursors.get(conversationId);
    if (current === undefined || seq > current) this._cursors.set(conversationId, seq);
  }

  untrack(conversationId) {
    this._cursors.delete(conversationId);
    this._maxSeen.delete(conversationId);
  }

  cursor(conversationId) {
    return this._cursors.get(conversationId);
  }

  /** Fetch what changed after the cursor and feed it through as "message.synced" events. */
  fill(conversationId) {
    const running = this._filling.get(conversationId);
    if (running) {
      running.again = true;
      return running.promise;
    }
    const job = { again: false };
    job.promise = (async () => {
      try {
        // Another gap seen during the fill means another round; a few rounds at most, as
        // the server's last_seq always covers every seq an event has shown us.
        for (let round = 0; round < 5; round++) {
          job.again = false;
          await this._fillOnce(conversationId);
          const behind = (this._maxSeen.get(conversationId) ?? 0) > (this._cursors.get(conversationId) ?? Infinity);
          if (!job.again && !behind) break;
        }
      } finally {
        this._filling.delete(conversationId);
      }
    })();
    this._filling.set(conversationId, job);
    return job.promise;
  }

  async _fillOnce(conversationId) {
    let after = this._cursors.get(conversationId);
    if (after === undefined) return;
    for (;;) {
      const page = await this._changes(conversationId, after);
      if (!this._cursors.has(conversationId)) return; // untracked meanwhile
      if (page.expired_through_seq > 0) {
        // Retention removed everything up to here while we were away: drop it too.
        this._onEvent("messages.expired", { conversation_id: conversationId, expired_through_seq: page.expired_through_seq });
      }
      for (const message of page.messages) {
        this._onEvent("message.synced", { conversation_id: conversationId, seq: message.version_seq, message });
      }
      after = page.has_more ? page.next_after_seq : page.last_seq;
      this.track(conversationId, after);
      if (!page.has_more) return;
    }
  }

  // --- connection

  async _connect() {
    this._teardown(4000, "reconnecting");
    clearTimeout(this._timers.retry);
    this._setState(State.CONNECTING);
    let token;
    try {
      token = await this._token();
    } catch (error) {
      if (error?.status === 401) {
        this.stop(); // logged out: the app takes over
        return;
      }
      this._scheduleRetry();
      return;
    }
    if (this.state !== State.CONNECTING) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this._send({ op: "identify", token });
      this._timers.identify = setTimeout(() => ws.close(4000, "no ready in time"), IDENTIFY_TIMEOUT_MS);
    };
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => {
      if (this.ws === ws) this._closed(event.code);
    };
    ws.onerror = () => {}; // onclose follows with the details we act on
  }

  _receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    this._lastFrameAt = Date.now();
    switch (frame.op) {
      case "ready":
        this._ready(frame.data || {});
        break;
      case "event":
        this._event(frame.type, frame.data || {});
        break;
      case "ack":
      case "error": {
        const call = this._pending.get(frame.ref);
        if (!call) {
          if (frame.op === "error" && !frame.ref) console.warn("gateway error", frame.error);
          return;
        }
        this._pending.delete(frame.ref);
        clearTimeout(call.timer);
        if (frame.op === "ack") call.resolve(frame.data ?? {});
        else call.reject(new GatewayError(frame.error));
        break;
      }
      default:
        break; // pong, hello and anything newer: liveness is all we need from them
    }
  }

  _ready(data) {
    clearTimeout(this._timers.identify);
    this.attempt = 0;
    this.sessionId = data.session_id || null;
    const interval = Number(data.heartbeat_interval_ms) || DEFAULT_HEARTBEAT_MS;
    this._lastFrameAt = Date.now();
    clearInterval(this._timers.heartbeat);
    this._timers.heartbeat = setInterval(() => {
      // Silent for two intervals: the connection is dead even if TCP has not noticed.
      if (Date.now() - this._lastFrameAt > interval * 2 + 2000) {
        this.ws?.close(4000, "heartbeat timeout");
        return;
      }
      this._send({ op: "ping" });
    }, interval);
    this._setState(State.READY);
    this._onReady(data);
    // Resume: every tracked conversation behind the server's last_seq is filled.
    const lastSeqs = new Map((data.conversations || []).map((c) => [c.id, c.last_seq]));
    for (const [conversationId, cursor] of [...this._cursors]) {
      if (!lastSeqs.has(conversationId)) this.untrack(conversationId);
      else if (lastSeqs.get(conversationId) > cursor) this.fill(conversationId).catch(() => {});
    }
  }

  _event(type, data) {
    if (SEQ_EVENTS.has(type) && data.conversation_id && Number.isInteger(data.seq)) {
      const key = `${type}:${data.message?.id ?? data.message_id}:${data.seq}:${data.emoji ?? ""}:${data.user_id ?? ""}`;
      if (this._seen.has(key)) return; // the same event twice (two nodes, a replayed buffer)
      this._remember(key);
      const cid = data.conversation_id;
      const cursor = this._cursors.get(cid);
      if (cursor !== undefined) {
        if (data.seq === cursor + 1 && !this._filling.has(cid)) {
          this._cursors.set(cid, data.seq);
        } else if (data.seq > cursor) {
          this._maxSeen.set(cid, Math.max(this._maxSeen.get(cid) ?? 0, data.seq));
          this.fill(cid).catch(() => {});
        }
      }
    }
    this._onEvent(type, data);
  }

  _remember(key) {
    this._seen.add(key);
    this._seenOrder.push(key);
    if (this._seenOrder.length > DEDUPE_WINDOW) this._seen.delete(this._seenOrder.shift());
  }

  async _closed(code) {
    this._teardown(code);
    if (this.state === State.STOPPED) return;
    if (navigator.onLine === false) {
      this._goOffline();
      return;
    }
    const expired = code === CloseCode.TOKEN_EXPIRED;
    if (code === CloseCode.AUTHENTICATION_FAILED || expired) {
      // Authentication failed or the token expired: refresh, then come straight back.
      try {
        await this._refresh();
      } catch (error) {
        if (error?.status === 401) {
          this.stop();
          return;
        }
      }
      if (expired && this.attempt === 0) {
        this.attempt = 1;
        this._connect();
        return;
      }
    }
    // 4008 rate limited, 4029 too many sockets for this user: coming straight back is
    // refused again.
    this._scheduleRetry(code === CloseCode.RATE_LIMITED || code === CloseCode.TOO_MANY_CONNECTIONS ? 10_000 : 0);
  }

  _scheduleRetry(minimumMs = 0) {
    if (this.state === State.STOPPED) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.max(minimumMs, ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryAt = Date.now() + delay;
    this._setState(State.WAITING);
    clearTimeout(this._timers.retry);
    this._timers.retry = setTimeout(() => this._connect(), delay);
  }

  _goOffline() {
    if (this.state === State.STOPPED) return;
    this._teardown(4000, "offline");
    clearTimeout(this._timers.retry);
    this._setState(State.OFFLINE);
  }

  _teardown(code = 1000, reason = "") {
    clearTimeout(this._timers.identify);
    clearInterval(this._timers.heartbeat);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close(code >= 4000 || code === 1000 ? code : 1000, reason);
        } catch {
          /* already closing */
        }
      }
    }
    for (const [ref, call] of this._pending) {
      clearTimeout(call.timer);
      call.reject(new GatewayUnavailable("Connection closed before the answer"));
      this._pending.delete(ref);
    }
  }

  _send(frame) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._onState(state);
  }
}

function defaultUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}
