// A secret shown once (a bot token, a webhook URL, a signing secret, an invite link): the
// server keeps only what it needs to check it, so the client shows it with a copy button
// when it is made, and never again.

import { copyText, h, toast } from "../dom.js";
import { openDialog } from "./dialogs.js";

/** Read-only text and a copy button. */
export function secretBox(label, value) {
  const field = h("input", { class: "input secret-value", readonly: true, value, "aria-label": label });
  return h("div", { class: "secret-box" },
    h("p", { class: "field-hint" }, `${label} — copy it now, it will not be shown again.`),
    h("div", { class: "secret-row" }, field,
      h("button", { type: "button", class: "btn btn-small", onclick: async () => { await copyText(value); toast("Copied"); } }, "Copy")));
}

/** A dialog holding one secret box. */
export function showOnce(title, label, value) {
  openDialog({ title, body: secretBox(label, value), actions: [{ label: "Done", primary: true }] });
}
