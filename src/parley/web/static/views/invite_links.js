// A group's invite links (DESIGN §6.3), in its details panel for owners and admins: the
// links made so far (uses, expiry, state), a new one with a lifetime and a use limit, and
// revoking one. A link's URL is shown once, when made: the server keeps only its hash.

import { api } from "../api.js";
import { formatAgo, formatFull, h, icon, toast } from "../dom.js";
import { store } from "../store.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { showOnce } from "./secret_box.js";

const HOUR = 3600;
const LIFETIMES = [["1 hour", HOUR], ["1 day", 24 * HOUR], ["7 days", 7 * 24 * HOUR], ["30 days", 30 * 24 * HOUR], ["Never", null]];
const USE_LIMITS = [["No limit", null], ["1 use", 1], ["5 uses", 5], ["25 uses", 25], ["100 uses", 100]];

/** What a link is now, in words: why it no longer works, or that it does. */
export function inviteState(invite) {
  if (invite.revoked) return "Revoked";
  if (invite.max_uses !== null && invite.uses >= invite.max_uses) return "Used up";
  if (!invite.usable) return "Expired";
  return "Active";
}

/** "expires in 3 days", "expired": short enough for the details panel (the full date is its title). */
function expiresIn(iso) {
  const seconds = (new Date(iso) - Date.now()) / 1000;
  if (seconds <= 0) return "expired";
  if (seconds < 3600) return `expires in ${Math.max(1, Math.round(seconds / 60))} min`;
  if (seconds < 23 * 3600) return `expires in ${Math.round(seconds / 3600)} h`;
  const days = Math.round(seconds / 86400);
  return `expires in ${days} day${days === 1 ? "" : "s"}`;
}

export class InviteLinksSection {
  constructor(conversationId) {
    this.id = conversationId;
    this.list = h("ul", { class: "webhook-list invite-list", "aria-label": "Invite links" }, h("li", { class: "muted" }, "Loading…"));
    this.el = h("div", { class: "invite-links" },
      h("div", { class: "details-section-head" },
        h("h4", { class: "details-subtitle" }, "Invite links"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => this.create() }, icon("link", { size: 15 }), " New link")),
      this.list);
    this.load();
  }

  async load() {
    try {
      const invites = await api.invites(this.id);
      this.list.replaceChildren(...(invites.length ? invites.map((invite) => this.row(invite)) : [h("li", { class: "muted" }, "No invite links yet.")]));
    } catch (failure) {
      this.list.replaceChildren(h("li", { class: "muted" }, `Couldn't load invite links: ${failure.message}`));
    }
  }

  row(invite) {
    const state = inviteState(invite);
    const uses = invite.max_uses === null ? `${invite.uses} used` : `${invite.uses} of ${invite.max_uses} used`;
    const expiry = invite.expires_at ? expiresIn(invite.expires_at) : "never expires";
    return h("li", { class: ["webhook-row", "invite-row", state !== "Active" && "is-disabled"], "data-invite-id": invite.id },
      h("span", { class: "webhook-text" },
        h("span", { class: "webhook-name" }, `By ${store.displayName(invite.created_by)}, ${formatAgo(invite.created_at)}`, " ", h("span", { class: "tag" }, state)),
        h("span", { class: "webhook-meta", title: invite.expires_at ? `Expires ${formatFull(invite.expires_at)}` : "" }, `${uses} · ${expiry}`)),
      state === "Active"
        ? h("button", { type: "button", class: "btn btn-small btn-danger-ghost", "aria-label": `Revoke the invite link made ${formatAgo(invite.created_at)}`, onclick: () => this.revoke(invite) }, "Revoke")
        : null);
  }

  create() {
    const lifetime = h("select", { class: "input", id: "invite-lifetime" },
      ...LIFETIMES.map(([label, seconds], index) => h("option", { value: String(index), selected: seconds === 7 * 24 * HOUR }, label)));
    const limit = h("select", { class: "input", id: "invite-limit" },
      ...USE_LIMITS.map(([label], index) => h("option", { value: String(index) }, label)));
    openDialog({
      title: "New invite link",
      body: h("div", { class: "stack" },
        h("div", { class: "field" }, h("label", { class: "field-label", for: "invite-lifetime" }, "Expires after"), lifetime),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "invite-limit" }, "Can be used"), limit),
        h("p", { class: "field-hint" }, "Anyone with the link can join this group until it expires, is used up or is revoked.")),
      actions: [{ label: "Cancel" }, {
        label: "Create link",
        primary: true,
        onClick: async () => {
          const invite = await api.createInvite(this.id, {
            expires_in_seconds: LIFETIMES[Number(lifetime.value)][1],
            max_uses: USE_LIMITS[Number(limit.value)][1],
          });
          showOnce("Invite link", "The link", invite.url);
          this.load();
        },
      }],
    });
  }

  async revoke(invite) {
    const ok = await confirmDialog({ title: "Revoke this invite link?", message: "Nobody can join with it from now on; people who joined stay.", confirmLabel: "Revoke", danger: true });
    if (!ok) return;
    try {
      await api.revokeInvite(this.id, invite.id);
      toast("Invite link revoked");
    } catch (failure) {
      toast(failure.message, { error: true });
    }
    this.load();
  }
}
