// The warning above an encrypted conversation when a member's keys changed (docs/e2ee.md
// "Verifying a contact"): a device that lists other keys than this browser first saw, or
// a verified contact whose safety number is no longer the one compared (the verified badge
// goes too). "Verify" opens the verify view, where the new number is compared and marked.

import { e2ee } from "../e2ee/engine.js";
import * as idb from "../e2ee/idb.js";
import { trustOf } from "../e2ee/trust.js";
import { h, icon, toast } from "../dom.js";
import { store } from "../store.js";
import { openVerify } from "./verify.js";

export class TrustBanner {
  /** `onTrust(trust)` gets the direct conversation's peer's trust (for the header badge). */
  constructor(conversationId, { onTrust = () => {} } = {}) {
    this.id = conversationId;
    this.onTrust = onTrust;
    this.peerTrust = null;
    this.seq = 0;
    this.el = h("div", { class: "trust-banner", role: "alert", hidden: true });
    this.off = [
      store.on("trust", () => this.load()),
      // Conversation updates are frequent; only the switch to encrypted matters here.
      store.on(`conversation:${conversationId}`, (c) => { if (c?.encrypted && !this.checked) this.load(); }),
      store.on(`members:${conversationId}`, () => this.load()),
    ];
    this.load();
  }

  destroy() {
    for (const off of this.off) off();
  }

  /** Whom to check: the peer of a direct conversation; in a group, the members this
   * browser verified or flagged (the others have no verification to lose). */
  async candidates(conversation) {
    const peer = store.peerOf(conversation);
    if (conversation.type === "direct") return peer && peer.id !== store.me.id ? [peer.id] : [];
    const members = [...(store.members.get(this.id)?.keys() || [])].filter((id) => id !== store.me.id);
    const state = await idb.load(e2ee.userId);
    const flagged = new Set((state?.identityChanges || []).map((c) => c.user_id));
    return members.filter((id) => state?.verified?.[id] || flagged.has(id));
  }

  async load() {
    const conversation = store.conversations.get(this.id);
    const mine = ++this.seq;
    if (!conversation?.encrypted || !e2ee.ready) return this.show([]);
    this.checked = true;
    try {
      await e2ee.ready;
      const found = [];
      for (const userId of await this.candidates(conversation)) {
        const trust = await trustOf(e2ee, userId);
        if (conversation.type === "direct") this.peerTrust = trust;
        if (trust.changed) found.push({ userId, trust });
      }
      if (mine !== this.seq) return;
      if (conversation.type === "direct") this.onTrust(this.peerTrust);
      this.show(found);
    } catch {
      /* no device here yet: nothing to compare */
    }
  }

  show(found) {
    this.el.hidden = !found.length;
    this.el.replaceChildren(...found.map(({ userId, trust }) => {
      const name = store.displayName(userId);
      return h("p", { class: "trust-banner-row" },
        icon("alert", { size: 16 }),
        h("span", {}, trust.keysChanged
          ? ` ${name}'s keys changed: a device of theirs now lists other keys than this browser first saw. It gets no messages from here until you verify ${name} again.`
          : ` ${name}'s safety number changed since you verified it. Compare it again before you trust new messages.`),
        h("button", { type: "button", class: "btn btn-small", onclick: () => openVerify(userId, { onChange: () => store.emit("trust", { user_id: userId }) }).catch((e) => toast(e.message, { error: true })) }, `Verify ${name}`));
    }));
  }
}
