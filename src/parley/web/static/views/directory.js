// The public group directory (GET /conversations/directory): browse and search the groups
// anyone may join, join one (POST /conversations/{id}/join) or open one you are in.

import { api } from "../api.js";
import { groupAvatar, h, icon, toast } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { conversationPath, navigate } from "../router.js";
import { store } from "../store.js";

export class DirectoryView {
  constructor() {
    setPageTitle("Browse groups");
    this.input = h("input", { type: "search", class: "input", placeholder: "Search public groups", "aria-label": "Search public groups", autocomplete: "off" });
    this.list = h("ul", { class: "directory-list", "aria-label": "Public groups" });
    this.input.addEventListener("input", () => {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this.load(), 200);
    });
    this.el = h("section", { class: "page directory" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title" }, icon("globe", { size: 20 }), " Browse groups")),
      h("div", { class: "page-body" }, this.input, this.list));
  }

  mount() {
    this.load();
    this.input.focus();
  }

  destroy() {
    clearTimeout(this._timer);
  }

  async load() {
    const q = this.input.value.trim();
    try {
      const groups = await api.directory(q);
      if (q !== this.input.value.trim()) return; // a newer search is on its way
      this.list.replaceChildren(...(groups.length ? groups.map((g) => this.row(g))
        : [h("li", { class: "muted directory-empty" }, q ? "No public group matches." : "No public groups yet.")]));
    } catch (error) {
      this.list.replaceChildren(h("li", { class: "muted", role: "alert" }, error.message));
    }
  }

  row(group) {
    const action = group.joined
      ? h("a", { class: "btn btn-small", href: conversationPath(group.id), "data-route": "" }, "Open")
      : h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => this.join(group) }, "Join");
    return h("li", { class: "directory-item", dataset: { conversationId: group.id } },
      groupAvatar(group.id, group.name),
      h("div", { class: "directory-text" },
        h("span", { class: "directory-name" }, group.name),
        h("span", { class: "muted" }, [`${group.member_count} members`, group.topic].filter(Boolean).join(" · "))),
      action);
  }

  async join(group) {
    try {
      const conversation = await api.join(group.id);
      store.upsertConversation(conversation);
      toast(`Joined ${conversation.name}`);
      navigate(conversationPath(conversation.id));
    } catch (error) {
      toast(error.message, { error: true });
    }
  }
}
