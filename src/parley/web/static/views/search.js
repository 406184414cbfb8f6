// Message search: a query box with filters (conversation, person, dates, has file), results
// grouped by conversation with the matched terms highlighted, keyboard navigation, and each
// result a deep link to its message. Encrypted conversations are searched in this browser
// (e2ee/search_index.js; the server never sees their text nor the query for them): those
// results come first, marked "Found on this device".

import { api, ApiError } from "../api.js";
import * as searchIndex from "../e2ee/search_index.js";
import { avatar, formatStamp, formatFull, groupAvatar, h, icon } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { conversationPath } from "../router.js";
import { store } from "../store.js";

const PAGE = 20;
const MIN_QUERY_CHARS = 2; // the server's lower bound for q
const LOCAL_LIMIT = 50; // local matches shown (newest first)

export class SearchView {
  constructor(query = {}) {
    this.query = query;
    this.results = [];
    this.nextCursor = null;
    this.seq = 0;
    this.q = h("input", { type: "search", class: "input search-input", name: "q", id: "search-q", placeholder: "Search messages", "aria-label": "Search messages", autocomplete: "off", value: query.q || "" });
    this.conversation = h("select", { class: "input", name: "conversation_id", "aria-label": "In conversation" },
      h("option", { value: "" }, "Any conversation"),
      store.sortedConversations().map((c) => h("option", { value: c.id, selected: c.id === query.conversation_id }, store.title(c))));
    const people = [...store.users.values()].filter((u) => u.username).sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username));
    this.sender = h("select", { class: "input", name: "sender_id", "aria-label": "From person" },
      h("option", { value: "" }, "Anyone"),
      people.map((u) => h("option", { value: u.id, selected: u.id === query.sender_id }, u.id === store.me.id ? `${u.display_name || u.username} (you)` : u.display_name || u.username)));
    this.after = h("input", { type: "date", class: "input", name: "after", "aria-label": "From date", value: query.after || "" });
    this.before = h("input", { type: "date", class: "input", name: "before", "aria-label": "To date", value: query.to || "" });
    this.hasFile = h("input", { type: "checkbox", name: "has", id: "search-has", checked: query.has === "attachment" });
    this.status = h("p", { class: "search-status", role: "status" });
    this.list = h("div", { class: "search-results", role: "list", "aria-label": "Search results" });
    this.more = h("button", { type: "button", class: "btn search-more", hidden: true, onclick: () => this.run(true) }, "Show more results");
    const form = h("form", { class: "search-form", role: "search", onsubmit: (event) => { event.preventDefault(); this.run(); } },
      h("div", { class: "search-box" }, icon("search", { size: 18 }), this.q, h("button", { type: "submit", class: "btn btn-primary" }, "Search")),
      h("div", { class: "search-filters", role: "group", "aria-label": "Filters" },
        this.conversation, this.sender,
        h("label", { class: "filter-date" }, h("span", {}, "From"), this.after),
        h("label", { class: "filter-date" }, h("span", {}, "To"), this.before),
        h("label", { class: "filter-check", for: "search-has" }, this.hasFile, h("span", {}, "Has file"))));
    for (const control of [this.conversation, this.sender, this.after, this.before, this.hasFile]) {
      control.addEventListener("change", () => { if (this.q.value.trim()) this.run(); });
    }
    this.q.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        this.list.querySelector(".search-result")?.focus();
      }
    });
    this.list.addEventListener("keydown", (event) => this.keys(event));
    this.el = h("section", { class: "page search-page", "aria-labelledby": "search-title" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title", id: "search-title" }, "Search")),
      h("div", { class: "page-body" }, form, this.status, this.list, this.more));
    setPageTitle("Search");
  }

  mount() {
    this.q.focus();
    if (this.q.value.trim()) this.run();
  }

  destroy() {}

  params() {
    const params = { q: this.q.value.trim(), limit: PAGE };
    if (this.conversation.value) params.conversation_id = this.conversation.value;
    if (this.sender.value) params.sender_id = this.sender.value;
    if (this.after.value) params.after = this.after.value;
    if (this.before.value) params.before = nextDay(this.before.value); // "To" includes that day
    if (this.hasFile.checked) params.has = "attachment";
    return params;
  }

  async run(more = false) {
    const params = this.params();
    if (!more) {
      const url = new URLSearchParams();
      for (const [key, value] of Object.entries({ q: params.q, conversation_id: params.conversation_id, sender_id: params.sender_id, after: params.after, to: this.before.value, has: params.has })) {
        if (value) url.set(key, value);
      }
      history.replaceState({}, "", `/search?${url}`);
    }
    if (Array.from(params.q).length < MIN_QUERY_CHARS) {
      // Nothing shown may be left over from an earlier query.
      this.seq++;
      this.clear();
      this.status.textContent = params.q ? `Type at least ${MIN_QUERY_CHARS} characters to search.` : "Type something to search for.";
      return;
    }
    if (more && this.nextCursor) params.cursor = this.nextCursor;
    const mine = ++this.seq;
    this.status.textContent = "Searching…";
    this.more.hidden = true;
    try {
      const local = more ? [] : await this.searchLocal(params);
      const page = await api.search(params);
      if (mine !== this.seq) return;
      this.results = more ? [...this.results, ...page.results] : [...local, ...page.results];
      this.nextCursor = page.next_cursor || null;
      this.render();
      const count = this.results.length;
      this.status.textContent = count ? `${count}${this.nextCursor ? "+" : ""} result${count === 1 ? "" : "s"} for “${params.q}”` : `No messages match “${params.q}”.`;
      this.more.hidden = !this.nextCursor;
    } catch (error) {
      if (mine !== this.seq) return;
      if (!more) this.clear();
      if (error instanceof ApiError && error.status === 404) {
        this.status.textContent = "Search isn't available on this server yet.";
      } else {
        this.status.textContent = error instanceof ApiError ? friendly(error) : "Search failed. Check your connection and try again.";
      }
    }
  }

  /** Matches in the local index of decrypted messages, shaped as the server's results. */
  async searchLocal(params) {
    try {
      const found = await searchIndex.search(store.me.id, params.q, params, LOCAL_LIMIT);
      return found.map((r) => {
        const conversation = store.conversations.get(r.conversation_id);
        const sender = store.users.get(r.sender_id);
        return { ...r, sender: sender || null, conversation: conversation ? { id: conversation.id, type: conversation.type, name: store.title(conversation) } : { id: r.conversation_id } };
      });
    } catch {
      return []; // no IndexedDB (private window): the server's results alone
    }
  }

  clear() {
    this.results = [];
    this.nextCursor = null;
    this.more.hidden = true;
    this.list.replaceChildren();
  }

  render() {
    const groups = new Map();
    for (const result of this.results) {
      const cid = result.conversation?.id || result.message?.conversation_id;
      if (!groups.has(cid)) groups.set(cid, []);
      groups.get(cid).push(result);
    }
    this.list.replaceChildren(...[...groups].map(([cid, results]) => {
      const known = store.conversations.get(cid);
      const place = results[0].conversation || {};
      const title = known ? store.title(known) : place.name || "Conversation";
      return h("section", { class: "search-group", role: "listitem", "aria-label": title },
        h("h2", { class: "search-group-title" },
          place.type === "direct" || known?.type === "direct" ? icon("message", { size: 15 }) : icon("hash", { size: 15 }),
          h("span", {}, title),
          h("span", { class: "muted" }, ` · ${results.length}`)),
        h("ul", { class: "search-group-list" }, results.map((r) => h("li", {}, this.result(r, cid)))));
    }));
  }

  result(result, cid) {
    const sender = result.sender;
    if (sender) store.rememberUser(sender);
    const name = sender ? sender.display_name || sender.username : "Parley";
    const messageId = result.message_id || result.message?.id;
    const created = result.created_at || result.message?.created_at;
    return h("a", {
      class: "search-result",
      href: conversationPath(cid, messageId),
      "data-route": "",
      dataset: { messageId },
      "aria-label": `${name}, ${formatFull(created)}: ${result.snippet ?? result.message?.content ?? ""}`,
    },
    sender ? avatar(sender.id, name, { size: "sm" }) : groupAvatar(cid, name, { size: "sm" }),
    h("span", { class: "search-result-main" },
      h("span", { class: "search-result-head" },
        h("span", { class: "search-result-author" }, name),
        h("time", { datetime: created, title: formatFull(created) }, formatStamp(created))),
      h("span", { class: "search-snippet", dir: "auto" }, highlighted(result.snippet ?? result.message?.content ?? "", result.highlights || [])),
      result.local ? h("span", { class: "search-local", title: "Decrypted and found in this browser; the server can't search encrypted messages" }, icon("lock", { size: 12 }), " Found on this device") : null));
  }

  keys(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = [...this.list.querySelectorAll(".search-result")];
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    if (event.key === "ArrowUp" && index === 0) {
      this.q.focus();
      return;
    }
    links[Math.min(links.length - 1, Math.max(0, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  }
}

/** Plain text with <mark> around the ranges; offsets count code points (the server's). */
export function highlighted(text, ranges) {
  const chars = Array.from(String(text));
  const spans = ranges
    .map((r) => (Array.isArray(r) ? { start: r[0], end: r[1] } : r))
    .filter((r) => Number.isInteger(r.start) && Number.isInteger(r.end) && r.end > r.start)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let pos = 0;
  for (const { start, end } of spans) {
    const s = Math.max(start, pos);
    const e = Math.min(end, chars.length);
    if (s >= e) continue;
    if (s > pos) out.push(chars.slice(pos, s).join(""));
    out.push(h("mark", {}, chars.slice(s, e).join("")));
    pos = e;
  }
  if (pos < chars.length) out.push(chars.slice(pos).join(""));
  return out;
}

function nextDay(value) {
  const d = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return value;
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

function friendly(error) {
  const detail = error.details?.[0];
  if (detail?.field === "q") return `Search: ${detail.message}.`;
  if (error.code === "RATE_LIMITED") return "You're searching a lot. Wait a moment and try again.";
  return error.message;
}
