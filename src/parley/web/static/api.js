// REST client: JSON in and out, the access token in memory, refresh through the HttpOnly
// cookie (cookie mode of /api/v1/auth), one refresh at a time across tabs.

const BASE = "/api/v1";
// Refresh this long before the access token expires, so requests rarely meet a 401.
const REFRESH_MARGIN_MS = 60_000;
const AUTH_LOST_CODES = new Set(["SESSION_REVOKED", "INVALID_REFRESH_TOKEN", "REFRESH_TOKEN_REUSED"]);

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = body?.error || {};
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || "HTTP_" + status;
    this.details = error.details || [];
    this.retryAfter = retryAfter;
    this.mfaToken = error.mfa_token; // TOTP_REQUIRED: the token for the login's second step
  }

  /** The message for one field of a validation error, if any. */
  field(name) {
    return this.details.find((d) => d.field === name)?.message;
  }
}

/** The request never got an answer (offline, server down, aborted). */
export class NetworkError extends Error {
  constructor(cause) {
    super("Network error");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

export class Api {
  constructor() {
    this.accessToken = null;
    this.expiresAt = 0;
    this.sessionId = null;
    this._refreshing = null;
    this.onAuthLost = () => {};
  }

  get authenticated() {
    return this.accessToken !== null;
  }

  // --- transport

  async request(method, path, { body, query, auth = true, retried = false } = {}) {
    if (auth) await this.token();
    const url = new URL(BASE + path, location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw new NetworkError(error);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (response.ok) return data;
    const retryAfter = Number(response.headers.get("Retry-After")) || undefined;
    const error = new ApiError(response.status, data, retryAfter);
    if (auth && response.status === 401 && !retried && !AUTH_LOST_CODES.has(error.code)) {
      await this.refresh(); // expired or otherwise stale token: one fresh try
      return this.request(method, path, { body, query, auth, retried: true });
    }
    if (auth && response.status === 401) this._lose();
    throw error;
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body = {}) { return this.request("POST", path, { body }); }
  patch(path, body) { return this.request("PATCH", path, { body }); }
  put(path, body) { return this.request("PUT", path, { body }); }
  delete(path) { return this.request("DELETE", path); }

  // --- tokens

  /** A valid access token, refreshed first when it is about to expire. */
  async token() {
    if (!this.accessToken) throw new ApiError(401, { error: { code: "NOT_LOGGED_IN", message: "Not logged in" } });
    if (Date.now() > this.expiresAt - REFRESH_MARGIN_MS) await this.refresh();
    return this.accessToken;
  }

  _accept(tokens) {
    this.accessToken = tokens.access_token;
    this.expiresAt = Date.now() + tokens.expires_in * 1000;
    this.sessionId = tokens.session_id || this.sessionId;
  }

  _lose() {
    const had = this.accessToken !== null;
    this.accessToken = null;
    this.expiresAt = 0;
    if (had) this.onAuthLost();
  }

  /** Rotate the cookie and get a new access token. One at a time, across tabs too: two tabs
   * presenting the same cookie at once would look like token theft to the server. */
  refresh({ optional = false } = {}) {
    if (!this._refreshing) {
      const run = () => this._refreshOnce({ optional });
      const locked = navigator.locks?.request ? navigator.locks.request("parley-refresh", run) : run();
      this._refreshing = locked.finally(() => { this._refreshing = null; });
    }
    return this._refreshing;
  }

  async _refreshOnce({ optional = false } = {}) {
    try {
      // optional: no cookie is a 204 (null here), not a 401 logged as a failed request.
      const tokens = await this.request("POST", "/auth/refresh", { body: { cookie: true, optional }, auth: false });
      if (!tokens) return false;
      this._accept(tokens);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this._lose();
      throw error;
    }
  }

  /** At page load: a session from the cookie, or null when there is none. */
  async restore() {
    try {
      if (!(await this.refresh({ optional: true }))) return null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    }
    return (await this.get("/users/me")).user;
  }

  async login(username, password) {
    const result = await this.request("POST", "/auth/login", {
      body: { username, password, cookie: true, device_name: deviceName() },
      auth: false,
    });
    this._accept(result);
    return result.user;
  }

  /** The second step of a login with 2FA: `proof` is {code} or {recovery_code}. */
  async loginSecondFactor(mfaToken, proof) {
    const result = await this.request("POST", "/auth/login/2fa", {
      body: { mfa_token: mfaToken, ...proof, cookie: true, device_name: deviceName() },
      auth: false,
    });
    this._accept(result);
    return result.user;
  }

  async register(username, password, displayName, invite) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    if (invite) body.invite = invite;
    return (await this.request("POST", "/auth/register", { body, auth: false })).user;
  }

  registrationMode() {
    return this.request("GET", "/auth/registration", { auth: false }).then((r) => r.registration);
  }

  requestPasswordReset(usernameOrEmail) {
    return this.request("POST", "/auth/password-reset", { body: { username_or_email: usernameOrEmail }, auth: false });
  }

  confirmPasswordReset(token, newPassword) {
    return this.request("POST", "/auth/password-reset/confirm", { body: { token, new_password: newPassword }, auth: false });
  }

  async logout() {
    try {
      if (this.accessToken) await this.post("/auth/logout");
    } finally {
      this.accessToken = null;
      this.expiresAt = 0;
    }
  }

  async logoutEverywhere() {
    try {
      await this.post("/auth/logout-all");
    } finally {
      this.accessToken = null;
    }
  }

  // --- resources

  me() { return this.get("/users/me").then((r) => r.user); }
  updateMe(changes) { return this.patch("/users/me", changes).then((r) => r.user); }
  searchUsers(q, limit = 20) { return this.get("/users", { q, limit }).then((r) => r.users); }
  user(id) { return this.get(`/users/${enc(id)}`).then((r) => r.user); }

  conversations() { return this.get("/conversations").then((r) => r.conversations); }
  conversation(id) { return this.get(`/conversations/${enc(id)}`).then((r) => r.conversation); }
  conversationBySlug(slug) { return this.get(`/conversations/by-slug/${enc(slug)}`).then((r) => r.conversation); }
  createDirect(userId, { encrypted = false } = {}) { return this.post("/conversations", { type: "direct", user_id: userId, ...(encrypted ? { encrypted } : {}) }).then((r) => r.conversation); }
  createGroup(name, memberIds, visibility = "private", { encrypted = false } = {}) { return this.post("/conversations", { type: "group", name, member_ids: memberIds, visibility, ...(encrypted ? { encrypted } : {}) }).then((r) => r.conversation); }
  updateConversation(id, changes) { return this.patch(`/conversations/${enc(id)}`, changes).then((r) => r.conversation); }
  deleteConversation(id) { return this.delete(`/conversations/${enc(id)}`); }
  members(id) { return this.get(`/conversations/${enc(id)}/members`).then((r) => r.members); }
  addMembers(id, userIds) { return this.post(`/conversations/${enc(id)}/members`, { user_ids: userIds }); }
  removeMember(id, userId) { return this.delete(`/conversations/${enc(id)}/members/${enc(userId)}`); }
  setRole(id, userId, role) { return this.patch(`/conversations/${enc(id)}/members/${enc(userId)}`, { role }); }
  markRead(id, seq) { return this.post(`/conversations/${enc(id)}/read`, { seq }); }
  markDelivered(id, seq) { return this.post(`/conversations/${enc(id)}/delivered`, { seq }); }

  history(id, params) { return this.get(`/conversations/${enc(id)}/messages`, params); }
  changes(id, afterSeq) { return this.get(`/conversations/${enc(id)}/changes`, { after_seq: afterSeq }); }
  send(id, body) { return this.post(`/conversations/${enc(id)}/messages`, body).then((r) => r.message); }
  message(id) { return this.get(`/messages/${enc(id)}`).then((r) => r.message); }
  editMessage(id, content) { return this.patch(`/messages/${enc(id)}`, { content }).then((r) => r.message); }
  deleteMessage(id) { return this.delete(`/messages/${enc(id)}`).then((r) => r.message); }
  addReaction(id, emoji) { return this.put(`/messages/${enc(id)}/reactions/${enc(emoji)}`).then((r) => r.message); }
  removeReaction(id, emoji) { return this.delete(`/messages/${enc(id)}/reactions/${enc(emoji)}`).then((r) => r.message); }
  receipts(id) { return this.get(`/messages/${enc(id)}/receipts`); }

  // Threads, pins, forwarding (DESIGN §6.5)
  thread(rootId, params) { return this.get(`/messages/${enc(rootId)}/thread`, params); }
  followThread(rootId, follow) { return (follow ? this.put(`/messages/${enc(rootId)}/thread/follow`) : this.delete(`/messages/${enc(rootId)}/thread/follow`)).then((r) => r.state); }
  markThreadRead(rootId, seq) { return this.post(`/messages/${enc(rootId)}/thread/read`, { seq }).then((r) => r.state); }
  threads(params) { return this.get("/threads", params); }
  pin(id, pinned) { return (pinned ? this.put(`/messages/${enc(id)}/pin`) : this.delete(`/messages/${enc(id)}/pin`)).then((r) => r.message); }
  pins(id) { return this.get(`/conversations/${enc(id)}/pins`).then((r) => r.pins); }
  forward(id, conversationIds) { return this.post(`/messages/${enc(id)}/forward`, { conversation_ids: conversationIds }).then((r) => r.messages); }

  // Public groups and invite links (DESIGN §6.3)
  directory(q) { return this.get("/conversations/directory", { q }).then((r) => r.conversations); }
  join(id) { return this.post(`/conversations/${enc(id)}/join`).then((r) => r.conversation); }
  createInvite(id, body = {}) { return this.post(`/conversations/${enc(id)}/invites`, body).then((r) => r.invite); }
  invites(id) { return this.get(`/conversations/${enc(id)}/invites`).then((r) => r.invites); }
  revokeInvite(id, inviteId) { return this.delete(`/conversations/${enc(id)}/invites/${enc(inviteId)}`); }
  invite(token) { return this.get(`/invites/${enc(token)}`); }
  joinByInvite(token) { return this.post(`/invites/${enc(token)}/join`).then((r) => r.conversation); }

  contacts(status = "all") { return this.get("/contacts", { status }).then((r) => r.contacts); }
  requestContact(userId) { return this.post("/contacts", { user_id: userId }).then((r) => r.contact); }
  acceptContact(userId) { return this.post(`/contacts/${enc(userId)}/accept`).then((r) => r.contact); }
  removeContact(userId) { return this.delete(`/contacts/${enc(userId)}`); }
  blocks() { return this.get("/blocks").then((r) => r.blocks); }
  block(userId) { return this.post("/blocks", { user_id: userId }); }
  unblock(userId) { return this.delete(`/blocks/${enc(userId)}`); }

  sessions() { return this.get("/sessions").then((r) => r.sessions); }

  // Data lifecycle (docs/lifecycle.md): retention, exports, erasure.
  setRetention(id, days) { return this.put(`/conversations/${enc(id)}/retention`, { retention_days: days }).then((r) => r.conversation); }
  requestExport() { return this.post("/users/me/export").then((r) => r.export); }
  requestConversationExport(id) { return this.post(`/conversations/${enc(id)}/export`).then((r) => r.export); }
  exports() { return this.get("/users/me/exports").then((r) => r.exports); }
  deleteAccount(password) { return this.request("DELETE", "/users/me", { body: { password } }); }
  /** A new profile picture (multipart); resolves to the updated user. */
  setAvatar(file) { return this.putPicture("/users/me/avatar", file).then((data) => data.user); }
  /** A group's new picture (its admins); resolves to the updated conversation. */
  setGroupAvatar(id, file) { return this.putPicture(`/conversations/${enc(id)}/avatar`, file).then((data) => data.conversation); }
  removeGroupAvatar(id) { return this.delete(`/conversations/${enc(id)}/avatar`).then((r) => r.conversation); }
  async putPicture(path, file) {
    const token = await this.token();
    const form = new FormData();
    form.append("file", file, file.name);
    let response;
    try {
      response = await fetch(`${BASE}${path}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
        body: form,
        credentials: "same-origin",
      });
    } catch (error) {
      throw new NetworkError(error);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data, Number(response.headers.get("Retry-After")) || undefined);
    return data;
  }
  removeAvatar() { return this.delete("/users/me/avatar").then((r) => r.user); }
  changePassword(current, next) { return this.post("/users/me/password", { current_password: current, new_password: next }); }
  twoFactor() { return this.get("/users/me/2fa").then((r) => r.two_factor); }
  enrolTwoFactor() { return this.post("/users/me/2fa").then((r) => r.two_factor); }
  confirmTwoFactor(code) { return this.post("/users/me/2fa/confirm", { code }).then((r) => r.recovery_codes); }
  disableTwoFactor(proof) { return this.request("DELETE", "/users/me/2fa", { body: proof }).then((r) => r.two_factor); }
  renewRecoveryCodes(code) { return this.post("/users/me/2fa/recovery-codes", { code }).then((r) => r.recovery_codes); }
  reportMessage(id, reason) { return this.post(`/messages/${enc(id)}/report`, { reason }).then((r) => r.report); }

  // --- administration (site staff)
  adminUsers(query) { return this.get("/admin/users", query); }
  adminUpdateUser(id, changes) { return this.patch(`/admin/users/${enc(id)}`, changes).then((r) => r.user); }
  adminResetLink(id) { return this.post(`/admin/users/${enc(id)}/password-reset-link`); }
  adminRevokeSessions(id) { return this.delete(`/admin/users/${enc(id)}/sessions`); }
  adminConversations(query) { return this.get("/admin/conversations", query); }
  adminArchiveConversation(id, archived) { return this.patch(`/admin/conversations/${enc(id)}`, { archived }); }
  adminDeleteConversation(id) { return this.delete(`/admin/conversations/${enc(id)}`); }
  adminSettings() { return this.get("/admin/settings").then((r) => r.settings); }
  adminUpdateSettings(changes) { return this.patch("/admin/settings", changes).then((r) => r.settings); }
  adminInvites() { return this.get("/admin/invites").then((r) => r.invites); }
  adminCreateInvite(body) { return this.post("/admin/invites", body).then((r) => r.invite); }
  adminRevokeInvite(id) { return this.delete(`/admin/invites/${enc(id)}`); }
  adminReports(query) { return this.get("/admin/reports", query); }
  adminResolveReport(id, action) { return this.post(`/admin/reports/${enc(id)}/resolve`, { action }).then((r) => r.report); }
  adminAudit(query) { return this.get("/admin/audit", query); }
  revokeSession(id) { return this.delete(`/sessions/${enc(id)}`); }

  // Integrations (DESIGN §6.6): bots, a conversation's webhooks, slash commands.
  bots() { return this.get("/bots").then((r) => r.bots); }
  createBot(username, displayName) { return this.post("/bots", { username, display_name: displayName || null }); }
  rotateBotToken(id) { return this.post(`/bots/${enc(id)}/token`); }
  deleteBot(id) { return this.delete(`/bots/${enc(id)}`); }
  /** A bot's new picture (its owner); resolves to the updated bot. */
  setBotPicture(id, file) { return this.putPicture(`/bots/${enc(id)}/avatar`, file).then((data) => data.bot); }
  removeBotPicture(id) { return this.delete(`/bots/${enc(id)}/avatar`).then((r) => r.bot); }
  webhooks(id) { return this.get(`/conversations/${enc(id)}/webhooks`).then((r) => r.webhooks); }
  createWebhook(id, body) { return this.post(`/conversations/${enc(id)}/webhooks`, body).then((r) => r.webhook); }
  updateWebhook(id, hookId, changes) { return this.patch(`/conversations/${enc(id)}/webhooks/${enc(hookId)}`, changes).then((r) => r.webhook); }
  deleteWebhook(id, hookId) { return this.delete(`/conversations/${enc(id)}/webhooks/${enc(hookId)}`); }
  webhookDeliveries(id, hookId) { return this.get(`/conversations/${enc(id)}/webhooks/${enc(hookId)}/deliveries`).then((r) => r.deliveries); }
  commands(conversationId) { return this.get("/commands", { conversation_id: conversationId }).then((r) => r.commands); }
  runCommand(id, text, threadRootId = null) { return this.post(`/conversations/${enc(id)}/commands`, threadRootId ? { text, thread_root_id: threadRootId } : { text }); }
  registerCommand(body) { return this.post("/commands", body).then((r) => r.command); }
  deleteCommand(id) { return this.delete(`/commands/${enc(id)}`); }

  search(params) { return this.get("/search", params); }
  attachment(id) { return this.get(`/attachments/${enc(id)}`).then((r) => r.attachment); }
  /** A conversation's files and media, newest first: {attachments, next_before, has_more}. */
  gallery(id, params) { return this.get(`/conversations/${enc(id)}/attachments`, params); }

  /** Upload one file (multipart), reporting progress 0..1; resolves to the attachment.
   * XMLHttpRequest, because fetch cannot report upload progress. */
  async upload(file, { onProgress, signal, encrypted = false } = {}) {
    const token = await this.token();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      // encrypted: an opaque blob sealed in this browser (docs/e2ee.md "Encrypted attachments").
      xhr.open("POST", `${BASE}/uploads${encrypted ? "?encrypted=true" : ""}`);
      xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "json";
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress?.(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status === 201) resolve(xhr.response.attachment);
        else reject(new ApiError(xhr.status, xhr.response, Number(xhr.getResponseHeader("Retry-After")) || undefined));
      };
      xhr.onerror = () => reject(new NetworkError(new Error("upload failed")));
      xhr.onabort = () => reject(new NetworkError(new Error("upload cancelled")));
      signal?.addEventListener("abort", () => xhr.abort());
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  /** An attachment's stored bytes (GET /attachments/{id}/original), for client-side decryption. */
  async attachmentBytes(id) {
    const token = await this.token();
    let response;
    try {
      response = await fetch(`${BASE}/attachments/${enc(id)}/original`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    } catch (error) {
      throw new NetworkError(error);
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return new Uint8Array(await response.arrayBuffer());
  }
}

function enc(value) {
  return encodeURIComponent(value);
}

/** A readable name for this browser ("Chrome on Linux (web)"): sessions and E2EE devices. */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return `${browser}${os ? " on " + os : ""} (web)`;
}

export const api = new Api();
