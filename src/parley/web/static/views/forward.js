// The forward dialog: pick one or more of your conversations (filterable), forward the
// message to them (POST /messages/{id}/forward). Each copy says whom it came from; files
// are shared by the server, not uploaded again.

import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { plainText } from "../markdown.js";
import { store } from "../store.js";
import { openDialog } from "./dialogs.js";

const MAX_TARGETS = 10;

export function forwardDialog(message) {
  const chosen = new Set();
  const filter = h("input", { type: "search", class: "input", placeholder: "Find a conversation", "aria-label": "Find a conversation", autocomplete: "off", autofocus: true });
  const list = h("ul", { class: "forward-list", "aria-label": "Conversations" });
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const items = store.sortedConversations().filter((c) => !q || store.title(c).toLowerCase().includes(q));
    list.replaceChildren(...items.map((conversation) => {
      const box = h("input", {
        type: "checkbox",
        id: `forward-${conversation.id}`,
        checked: chosen.has(conversation.id),
        disabled: !chosen.has(conversation.id) && chosen.size >= MAX_TARGETS,
        onchange: () => {
          if (box.checked) chosen.add(conversation.id);
          else chosen.delete(conversation.id);
          render();
        },
      });
      return h("li", { class: "forward-item" }, box, h("label", { for: `forward-${conversation.id}` }, store.title(conversation)));
    }));
  };
  filter.addEventListener("input", render);
  render();
  openDialog({
    title: "Forward message",
    className: "dialog-forward",
    body: h("div", { class: "stack" },
      h("blockquote", { class: "forward-preview", dir: "auto" }, plainText(message.content).slice(0, 200) || `${message.attachments?.length || 0} files`),
      filter, list),
    actions: [
      { label: "Cancel" },
      {
        label: "Forward",
        primary: true,
        onClick: async () => {
          if (!chosen.size) throw new Error("Choose at least one conversation.");
          const sent = await api.forward(message.id, [...chosen]);
          for (const copy of sent) store.applyMessage(copy);
          toast(sent.length === 1 ? `Forwarded to ${store.title(store.conversations.get(sent[0].conversation_id))}` : `Forwarded to ${sent.length} conversations`);
        },
      },
    ],
  });
}
