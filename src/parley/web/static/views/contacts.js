// Contacts: your contacts, requests to and from you, blocked people, and adding someone.

import { api } from "../api.js";
import { avatar, formatStamp, h, icon, toast } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { conversationPath, navigate } from "../router.js";
import { store } from "../store.js";
import { confirmDialog, peoplePicker } from "./dialogs.js";

const TABS = [
  ["accepted", "Contacts"],
  ["requests", "Requests"],
  ["blocked", "Blocked"],
];

export class ContactsView {
  constructor() {
    this.tab = "accepted";
    this.contacts = [];
    this.blocks = [];
    this.loaded = false;
    this.tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Contacts" });
    this.panel = h("div", { class: "tab-panel", role: "tabpanel", id: "contacts-panel", tabindex: "0" });
    const picker = peoplePicker({
      label: "Find people to add as contacts",
      onPick: (user) => this.act(() => api.requestContact(user.id), `Contact request sent to ${user.display_name || user.username}`),
    });
    this.el = h("section", { class: "page contacts-page", "aria-labelledby": "contacts-title" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title", id: "contacts-title" }, "Contacts")),
      h("div", { class: "page-body" },
        h("section", { class: "card" }, h("h2", { class: "card-title" }, "Add a contact"), picker.el),
        h("section", { class: "card" }, this.tabs, this.panel)));
    this.off = store.on("contacts", () => this.load());
    setPageTitle("Contacts");
  }

  mount() {
    this.load();
  }

  destroy() {
    this.off();
  }

  async load() {
    try {
      [this.contacts, this.blocks] = await Promise.all([api.contacts("all"), api.blocks()]);
      this.loaded = true;
      for (const c of this.contacts) store.rememberUser(c.user);
      store.incomingRequests = this.contacts.filter((c) => c.status === "incoming").length;
      store.emit("incoming-requests", store.incomingRequests);
    } catch (error) {
      toast(error.message, { error: true });
    }
    this.render();
  }

  render() {
    const incoming = this.contacts.filter((c) => c.status === "incoming");
    this.tabs.replaceChildren(...TABS.map(([key, label]) => h("button", {
      type: "button",
      role: "tab",
      class: ["tab", this.tab === key && "is-active"],
      "aria-selected": this.tab === key ? "true" : "false",
      "aria-controls": "contacts-panel",
      tabindex: this.tab === key ? "0" : "-1",
      onclick: () => { this.tab = key; this.render(); },
      onkeydown: (event) => {
        if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
        const index = TABS.findIndex(([k]) => k === this.tab);
        this.tab = TABS[(index + (event.key === "ArrowRight" ? 1 : -1) + TABS.length) % TABS.length][0];
        this.render();
        this.tabs.querySelector(".is-active")?.focus();
      },
    }, label, key === "requests" && incoming.length ? h("span", { class: "badge badge-small" }, String(incoming.length)) : null)));
    if (!this.loaded) {
      this.panel.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      return;
    }
    if (this.tab === "accepted") {
      const list = this.contacts.filter((c) => c.status === "accepted");
      this.panel.replaceChildren(list.length
        ? h("ul", { class: "people-list" }, list.map((c) => this.row(c.user, `Contact since ${formatStamp(c.updated_at)}`, [
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.message(c.user) }, icon("message", { size: 14 }), " Message"),
          h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.remove(c.user) }, "Remove"),
          h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => this.block(c.user) }, "Block"),
        ])))
        : empty("No contacts yet. Add someone above."));
    } else if (this.tab === "requests") {
      const outgoing = this.contacts.filter((c) => c.status === "outgoing");
      this.panel.replaceChildren(
        h("h3", { class: "list-title" }, "Waiting for you"),
        incoming.length ? h("ul", { class: "people-list" }, incoming.map((c) => this.row(c.user, `Asked ${formatStamp(c.created_at)}`, [
          h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => this.act(() => api.acceptContact(c.user.id), `${name(c.user)} is now a contact`) }, "Accept"),
          h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.act(() => api.removeContact(c.user.id), "Request declined") }, "Decline"),
          h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => this.block(c.user) }, "Block"),
        ]))) : empty("No requests waiting for you."),
        h("h3", { class: "list-title" }, "Sent by you"),
        outgoing.length ? h("ul", { class: "people-list" }, outgoing.map((c) => this.row(c.user, `Sent ${formatStamp(c.created_at)}`, [
          h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.act(() => api.removeContact(c.user.id), "Request cancelled") }, "Cancel request"),
        ]))) : empty("You haven't sent any requests."));
    } else {
      this.panel.replaceChildren(this.blocks.length
        ? h("ul", { class: "people-list" }, this.blocks.map((b) => this.row(b.user, `Blocked ${formatStamp(b.created_at)}`, [
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.act(() => api.unblock(b.user.id), `Unblocked ${name(b.user)}`) }, "Unblock"),
        ])))
        : empty("You haven't blocked anyone."));
    }
  }

  row(user, note, actions) {
    return h("li", { class: "person-row", dataset: { userId: user.id } },
      avatar(user.id, name(user), { size: "md", presence: store.presence.has(user.id) ? store.presenceOf(user.id) : undefined }),
      h("span", { class: "person-text" },
        h("span", { class: "person-name" }, name(user)),
        h("span", { class: "person-handle" }, `@${user.username} · ${note}`)),
      h("span", { class: "person-actions" }, actions));
  }

  async act(action, done) {
    try {
      await action();
      toast(done);
    } catch (error) {
      toast(error.message, { error: true });
    }
    await this.load();
  }

  async message(user) {
    try {
      const conversation = await api.createDirect(user.id);
      store.upsertConversation(conversation);
      navigate(conversationPath(conversation.id));
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async remove(user) {
    if (await confirmDialog({ title: `Remove ${name(user)}?`, message: "They'll no longer be in your contacts. Your conversations stay.", confirmLabel: "Remove" })) {
      await this.act(() => api.removeContact(user.id), `Removed ${name(user)}`);
    }
  }

  async block(user) {
    if (await confirmDialog({ title: `Block ${name(user)}?`, message: "They won't be able to message you or see when you're online.", confirmLabel: "Block", danger: true })) {
      await this.act(() => api.block(user.id), `Blocked ${name(user)}`);
    }
  }
}

function name(user) {
  return user.display_name || user.username;
}

function empty(text) {
  return h("p", { class: "empty-note" }, text);
}

/** Keep the sidebar's request badge current. */
export async function refreshIncomingRequests() {
  try {
    const incoming = await api.contacts("incoming");
    store.incomingRequests = incoming.length;
    store.emit("incoming-requests", incoming.length);
  } catch {
    /* the badge waits for the next change */
  }
}
