// Reporting a message to the site's moderators: a reason, sent once.

import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { openDialog } from "./dialogs.js";

export function reportDialog(message) {
  const reason = h("textarea", { id: "report-reason", class: "input", rows: "3", maxlength: "1000", placeholder: "What is wrong with this message?" });
  const dialog = openDialog({
    title: "Report message",
    body: h("div", {},
      h("p", { class: "muted" }, "The site's moderators will see the message and your reason. You'll be told what they decide."),
      h("div", { class: "field" }, h("label", { class: "field-label", for: "report-reason" }, "Reason"), reason)),
    actions: [
      { label: "Cancel" },
      {
        label: "Report",
        primary: true,
        onClick: async () => {
          if (!reason.value.trim()) {
            dialog.setError("Say why you report it.");
            return false;
          }
          try {
            await api.reportMessage(message.id, reason.value.trim());
          } catch (error) {
            dialog.setError(error.code === "ALREADY_REPORTED" ? "You have already reported this message." : error.message);
            return false;
          }
          toast("Reported. Thank you.");
          return true;
        },
      },
    ],
  });
}
