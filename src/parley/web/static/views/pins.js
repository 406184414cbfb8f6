// Pinned messages: a section of the details panel (GET /conversations/{id}/pins), kept
// current as messages are pinned, unpinned or deleted; a click shows the message.

import { api } from "../api.js";
import { h } from "../dom.js";
import { plainText } from "../markdown.js";
import { conversationPath, navigate } from "../router.js";
import { store } from "../store.js";

export class PinsSection {
  constructor(conversationId) {
    this.id = conversationId;
    this.list = h("ul", { class: "pins-list", "aria-label": "Pinned messages" });
    this.el = h("section", { class: "details-section pins" },
      h("h3", { class: "details-section-title" }, "Pinned"), this.list);
    this.off = store.on(`timeline:${conversationId}`, (change) => {
      const message = change?.message;
      if (!message) return; // a page of history, not a change
      const line = message.system_event?.type;
      if (line === "message.pinned" || line === "message.unpinned" || message.pinned || message.deleted) this.schedule();
    });
    this.load();
  }

  destroy() {
    this.off();
    clearTimeout(this._timer);
  }

  schedule() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), 150);
  }

  async load() {
    try {
      const pins = await api.pins(this.id);
      this.list.replaceChildren(...(pins.length ? pins.map((m) => this.row(m)) : [h("li", { class: "muted" }, "Nothing pinned yet.")]));
    } catch {
      this.list.replaceChildren(h("li", { class: "muted" }, "Couldn't load the pinned messages."));
    }
  }

  row(message) {
    return h("li", { class: "pin-item", dataset: { messageId: message.id } },
      h("button", { type: "button", class: "pin-link", onclick: () => navigate(conversationPath(this.id, message.id)) },
        h("span", { class: "pin-author" }, store.displayName(message.sender_id)),
        h("span", { class: "pin-text", dir: "auto" }, plainText(message.content).slice(0, 120) || "Attachment")));
  }
}
