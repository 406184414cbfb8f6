// The details panel's "Encryption" section (docs/e2ee.md "In the web client"): whether the
// conversation is end-to-end encrypted, "Turn on encryption" for those who may (a group's
// admins, either side of a direct conversation; one way: the server refuses to switch it
// off), and for a direct conversation the safety number with "Verify" and the badge.

import { api } from "../api.js";
import { h, icon, toast } from "../dom.js";
import { store } from "../store.js";
import { confirmDialog } from "./dialogs.js";
import { openVerify, verifiedBadge } from "./verify.js";

/**
 * `trust` is trust.trustOf's answer for the direct conversation's peer (null while it
 * loads, or for a group); `refresh` reloads it after a verification.
 */
export function encryptionSection(conversation, { canSwitch, peerId = null, trust = null, refresh = () => {} }) {
  if (!conversation.encrypted) {
    return h("section", { class: "details-section", "aria-label": "Encryption" },
      h("h3", { class: "details-section-title" }, "Not end-to-end encrypted"),
      h("p", { class: "muted" }, canSwitch
        ? "Turn on end-to-end encryption so only the members' devices can read new messages. It can't be turned off."
        : "A group admin can turn on end-to-end encryption."),
      canSwitch ? h("button", { type: "button", class: "btn btn-small", onclick: () => turnOn(conversation) }, icon("lock", { size: 15 }), " Turn on encryption") : null);
  }
  const name = peerId ? store.displayName(peerId) : null;
  return h("section", { class: "details-section", "aria-label": "Encryption" },
    h("h3", { class: "details-section-title" }, "End-to-end encrypted", trust?.verified ? [" ", verifiedBadge()] : null),
    peerId
      ? [
        trust?.changed ? h("p", { class: "e2ee-warning", role: "alert" }, icon("alert", { size: 15 }),
          trust.keysChanged
            ? ` A device of ${name} changed its keys since this browser first saw it. It gets no messages from here until you verify ${name} again.`
            : ` ${name}'s safety number changed since you verified it. Verify ${name} again.`) : null,
        h("p", { class: "muted" }, `Compare this safety number with ${name} (in person or on a call): if it matches, nobody is reading along.`),
        h("p", { class: "safety-number", "aria-label": "Safety number" }, trust?.number || "…"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => openVerify(peerId, { onChange: refresh }).catch((e) => toast(e.message, { error: true })) },
          icon("shield", { size: 15 }), trust?.verified ? " Show verification" : ` Verify ${name}`),
      ]
      : h("p", { class: "muted" }, "Only the members' devices can read messages here. Verify a member from their menu below."));
}

async function turnOn(conversation) {
  const ok = await confirmDialog({
    title: "Turn on end-to-end encryption?",
    message: "New messages can only be read on the members' devices; the server can't search them. This can't be turned off.",
    confirmLabel: "Turn on encryption",
  });
  if (!ok) return;
  try {
    store.upsertConversation(await api.updateConversation(conversation.id, { encrypted: true }));
    toast("End-to-end encryption is on");
  } catch (error) {
    toast(error.message, { error: true });
  }
}
