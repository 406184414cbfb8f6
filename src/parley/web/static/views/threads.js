// The "Threads" view (GET /threads): the threads you follow, the most recently replied
// first, with their new replies counted; opening one opens its conversation with the
// thread panel beside it.

import { h, icon, formatStamp } from "../dom.js";
import { plainText } from "../markdown.js";
import { setPageTitle } from "../notify.js";
import { threadPath } from "../router.js";
import { store } from "../store.js";
import { loadThreads } from "../sync/conversations.js";

export class ThreadsView {
  constructor() {
    setPageTitle("Threads");
    this.list = h("ul", { class: "threads-list", "aria-label": "Followed threads" }, h("li", {}, h("span", { class: "spinner" })));
    this.el = h("section", { class: "page threads" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title" }, icon("thread", { size: 20 }), " Threads")),
      h("div", { class: "page-body" }, this.list));
    this.off = store.on("threads", () => this.schedule());
  }

  mount() {
    this.load();
  }

  destroy() {
    this.off();
  }

  schedule() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), 300);
  }

  async load() {
    try {
      const threads = await loadThreads();
      this.list.replaceChildren(...(threads.length ? threads.map((t) => this.row(t))
        : [h("li", { class: "muted threads-empty" }, "No threads yet. Reply in a thread, or follow one, and it shows here.")]));
    } catch (error) {
      this.list.replaceChildren(h("li", { class: "muted", role: "alert" }, error.message));
    }
  }

  row({ root, state }) {
    const conversation = store.conversations.get(root.conversation_id);
    const unread = state.unread_count || 0;
    return h("li", { class: ["threads-item", unread && "has-unread"], dataset: { rootId: root.id } },
      h("a", { class: "threads-link", href: threadPath(root.conversation_id, root.id), "data-route": "" },
        h("span", { class: "threads-where muted" }, conversation ? store.title(conversation) : ""),
        h("span", { class: "threads-text", dir: "auto" }, `${store.displayName(root.sender_id)}: ${plainText(root.content).slice(0, 140) || "Message"}`),
        h("span", { class: "threads-meta muted" },
          `${root.thread?.reply_count || 0} replies`,
          root.thread?.last_reply_at ? ` · ${formatStamp(root.thread.last_reply_at)}` : ""),
        unread ? h("span", { class: "badge", "aria-label": `${unread} new replies` }, String(unread)) : null));
  }
}
