// The details panel beside a conversation. Groups: rename, topic, members with roles, add /
// remove / promote, leave, delete. Direct conversations: the other person, contact and block.

import { api, ApiError } from "../api.js";
import { e2ee } from "../e2ee/engine.js";
import { trustOf } from "../e2ee/trust.js";
import { avatar, copyText, formatAgo, groupAvatar, h, icon, iconButton, toast } from "../dom.js";
import { navigate } from "../router.js";
import { store } from "../store.js";
import { loadMembers } from "../sync/conversations.js";
import { confirmDialog, openDialog, peoplePicker } from "./dialogs.js";
import { encryptionSection } from "./encryption_section.js";
import { openVerify } from "./verify.js";
import { GallerySection } from "./gallery.js";
import { PinsSection } from "./pins.js";
import { IntegrationsSection } from "./integrations.js";
import { InviteLinksSection } from "./invite_links.js";
import { openMenu } from "./popover.js";

const RANK = { member: 1, admin: 2, owner: 3 };
const ROLE_LABEL = { owner: "Owner", admin: "Admin", member: "Member" };
// Retention periods offered in the details panel (days); any other value set through the
// API is shown as it is.
const RETENTION_CHOICES = [1, 7, 30, 90, 365, 730];
const YOU_ARE = { owner: "you're the owner", admin: "you're an admin", member: "you're a member" };

export class DetailsPanel {
  constructor(conversationId, { onClose }) {
    this.id = conversationId;
    this.onClose = onClose;
    this.body = h("div", { class: "details-body" });
    this.el = h("aside", { class: "details", "aria-label": "Conversation details", tabindex: "-1" },
      h("header", { class: "details-head" },
        h("h2", { class: "details-title" }, "Details"),
        iconButton("x", "Close details", () => this.onClose())),
      this.body);
    this.el.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) this.onClose();
    });
    this.unsubscribe = [
      store.on(`members:${conversationId}`, () => this.render()),
      store.on(`conversation:${conversationId}`, () => this.render()),
      store.on("presence", () => this.render()),
      store.on(`conversation:${conversationId}`, () => { if (this.conversation?.encrypted && !this.trust) this.loadSafetyNumber(); }),
      store.on("trust", () => this.loadSafetyNumber()),
      store.on("contacts", () => this.loadRelationship()),
    ];
    this.relationship = null;
    this.gallery = new GallerySection(conversationId); // kept across re-renders
    this.pins = new PinsSection(conversationId);
    this.render();
    loadMembers(conversationId).catch(() => {});
    this.loadRelationship();
    this.loadSafetyNumber();
  }

  destroy() {
    for (const off of this.unsubscribe) off();
    this.gallery.destroy();
    this.pins.destroy();
  }

  get conversation() {
    return store.conversations.get(this.id);
  }

  async loadRelationship() {
    const conversation = this.conversation;
    if (conversation?.type !== "direct") return;
    const peer = store.peerOf(conversation);
    if (!peer) return;
    try {
      const [contacts, blocks] = await Promise.all([api.contacts("all"), api.blocks()]);
      const contact = contacts.find((c) => c.user.id === peer.id);
      this.relationship = { contact: contact?.status || null, blocked: blocks.some((b) => b.user.id === peer.id) };
    } catch {
      this.relationship = null;
    }
    this.render();
  }

  /** An encrypted direct conversation's safety number and verification (e2ee/trust.js). */
  async loadSafetyNumber() {
    const conversation = this.conversation;
    const peer = conversation?.encrypted && conversation.type === "direct" ? store.peerOf(conversation) : null;
    if (!peer) return;
    try {
      this.trust = await trustOf(e2ee, peer.id);
    } catch {
      this.trust = null;
    }
    this.render();
  }

  render() {
    const conversation = this.conversation;
    if (!conversation) return;
    const scroll = this.body.scrollTop;
    this.body.replaceChildren(...(conversation.type === "group" ? this.group(conversation) : this.direct(conversation)));
    this.body.scrollTop = scroll;
  }

  // --- groups

  group(conversation) {
    const members = [...(store.members.get(this.id)?.values() || [])];
    const myRole = conversation.role || store.members.get(this.id)?.get(store.me.id)?.role || "member";
    const admin = RANK[myRole] >= RANK.admin;
    // The form survives re-renders (members and presence change often) unless the group's
    // settings themselves changed, so typing in it is never wiped out.
    const formSignature = `${conversation.name ?? ""}|${conversation.topic ?? ""}|${admin}`;
    const keep = this._form && (this._form.signature === formSignature || this._form.editing());
    const settings = keep ? this._form.el : this.settingsForm(conversation, admin);
    if (!keep) this._form = { signature: formSignature, el: settings, editing: () => settings.contains(document.activeElement) || settings.dataset.dirty === "1" };

    const sorted = members.sort((a, b) => RANK[b.role] - RANK[a.role] || store.displayName(a.user_id).localeCompare(store.displayName(b.user_id)));
    const list = h("ul", { class: "member-list", "aria-label": "Members" },
      sorted.map((member) => this.memberRow(member, myRole)));

    return [
      h("div", { class: "details-hero" },
        groupAvatar(conversation.id, conversation.name, { size: "lg", picture: conversation.avatar }),
        h("h3", { class: "details-name" }, conversation.name),
        admin ? this.pictureActions(conversation) : null,
        h("p", { class: "muted" }, `${conversation.member_count || members.length} members · ${YOU_ARE[myRole]}`)),
      h("section", { class: "details-section" }, h("h3", { class: "details-section-title" }, "Settings"), settings),
      h("section", { class: "details-section" },
        h("div", { class: "details-section-head" },
          h("h3", { class: "details-section-title" }, `Members (${members.length})`),
          admin ? h("button", { type: "button", class: "btn btn-small", onclick: () => this.addPeople(members) }, icon("userPlus", { size: 15 }), " Add people") : null),
        members.length ? list : h("p", { class: "muted" }, "Loading members…")),
      encryptionSection(conversation, { canSwitch: admin }),
      this.cachedHistory(conversation, admin),
      this.sharing(conversation, admin),
      this.pins.el,
      this.gallery.el,
      admin ? this.webhooksSection().el : null,
      h("section", { class: "details-section details-danger" },
        h("button", { type: "button", class: "btn btn-danger-ghost", onclick: () => this.leave() }, icon("logout", { size: 15 }), " Leave group"),
        myRole === "owner" ? h("button", { type: "button", class: "btn btn-danger-ghost", onclick: () => this.deleteGroup() }, icon("trash", { size: 15 }), " Delete group") : null),
    ];
  }

  /** The group's picture (its admins): "Change picture" (any JPEG, PNG, GIF or WebP; the
   * server crops it square) and "Remove picture". Members see it through
   * `conversation.updated`, which re-renders this panel too. */
  pictureActions(conversation) {
    const inputId = `group-avatar-file-${conversation.id}`;
    const input = h("input", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp", class: "sr-only", id: inputId });
    const change = h("label", { class: "btn btn-small", for: inputId }, "Change picture");
    input.addEventListener("change", async () => {
      const file = input.files?.[0];
      input.value = "";
      if (!file) return;
      change.classList.add("is-busy");
      try {
        await api.setGroupAvatar(conversation.id, file);
        toast("Group picture updated");
      } catch (error) {
        toast(error.message || "Couldn't use that picture", { error: true });
      } finally {
        change.classList.remove("is-busy");
      }
    });
    const remove = conversation.avatar ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: async () => {
      try {
        await api.removeGroupAvatar(conversation.id);
      } catch (error) {
        toast(error.message, { error: true });
      }
    } }, "Remove picture") : null;
    return h("div", { class: "profile-picture-actions details-picture-actions" }, change, remove, input);
  }

  /** Who can get in (DESIGN §6.3): public (the directory) or private, and invite links. */
  sharing(conversation, admin) {
    const isPublic = conversation.visibility === "public";
    return h("section", { class: "details-section details-sharing" },
      h("h3", { class: "details-section-title" }, "Sharing"),
      h("p", { class: "muted" }, isPublic ? "Public: anyone can find this group in the directory and join it." : "Private: people join when added or with an invite link."),
      admin ? h("div", { class: "details-sharing-actions" },
        h("button", { type: "button", class: "btn btn-small", onclick: () => this.copyInvite() }, icon("link", { size: 15 }), " Copy invite link"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => this.setVisibility(isPublic ? "private" : "public") },
          icon("globe", { size: 15 }), isPublic ? " Make private" : " Make public")) : null,
      admin ? this.inviteLinksSection().el : null);
  }

  /** Kept across re-renders, as the webhooks section: its list loads once, and after changes. */
  inviteLinksSection() {
    this._inviteLinks ||= new InviteLinksSection(this.id);
    return this._inviteLinks;
  }

  async copyInvite() {
    try {
      const invite = await api.createInvite(this.id);
      await copyText(invite.url);
      this._inviteLinks?.load();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async setVisibility(visibility) {
    try {
      store.upsertConversation(await api.updateConversation(this.id, { visibility }));
      toast(visibility === "public" ? "The group is public" : "The group is private");
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  /** Kept across re-renders (its list loads once, and again after each change). */
  webhooksSection() {
    this._webhooks ||= new IntegrationsSection(this.id);
    return this._webhooks;
  }

  settingsForm(conversation, admin) {
    const nameInput = h("input", { class: "input", id: "group-rename", value: conversation.name || "", maxlength: "100", disabled: !admin, autocomplete: "off" });
    const topicInput = h("textarea", { class: "input", id: "group-topic", rows: "2", maxlength: "500", disabled: !admin, placeholder: admin ? "What is this group about?" : "No topic" });
    topicInput.value = conversation.topic || "";
    const settings = h("form", {
      class: "details-form",
      "aria-label": "Group settings",
      oninput: () => { settings.dataset.dirty = "1"; },
      onsubmit: async (event) => {
        event.preventDefault();
        const changes = {};
        if (nameInput.value.trim() && nameInput.value.trim() !== conversation.name) changes.name = nameInput.value.trim();
        if (topicInput.value.trim() !== (conversation.topic || "")) changes.topic = topicInput.value.trim();
        if (!Object.keys(changes).length) return;
        try {
          delete settings.dataset.dirty;
          store.upsertConversation(await api.updateConversation(this.id, changes));
          toast("Group updated");
        } catch (error) {
          toast(error.message, { error: true });
        }
      },
    },
    h("div", { class: "field" }, h("label", { class: "field-label", for: "group-rename" }, "Name"), nameInput),
    h("div", { class: "field" }, h("label", { class: "field-label", for: "group-topic" }, "Topic"), topicInput),
    admin ? h("button", { type: "submit", class: "btn btn-small btn-primary" }, "Save changes") : null);
    return settings;
  }

  /** Rebuilt only when retention or the caller's role changed (presence re-renders often,
   * and would close an open drop-down). */
  cachedHistory(conversation, admin) {
    const signature = `${conversation.retention_days ?? ""}|${conversation.legal_hold}|${admin}`;
    if (this._history?.signature !== signature) this._history = { signature, el: this.historySection(conversation, admin) };
    return this._history.el;
  }

  /** Retention (how long messages are kept) and, for admins, a conversation export. */
  historySection(conversation, admin) {
    const current = conversation.retention_days ?? null;
    const choices = [[null, "Site default"], ...RETENTION_CHOICES.map((days) => [days, retentionLabel(days)])];
    if (current !== null && !RETENTION_CHOICES.includes(current)) choices.push([current, retentionLabel(current)]);
    const select = h("select", {
      class: "input",
      id: "group-retention",
      disabled: !admin,
      onchange: async () => {
        const days = select.value === "" ? null : Number(select.value);
        try {
          store.upsertConversation(await api.setRetention(this.id, days));
          toast(days === null ? "Messages follow the site's retention" : `Messages are kept ${retentionLabel(days)}`);
        } catch (error) {
          toast(error.message, { error: true });
          select.value = current === null ? "" : String(current);
        }
      },
    }, choices.map(([days, label]) => h("option", { value: days === null ? "" : String(days), selected: days === current }, label)));
    return h("section", { class: "details-section", "aria-labelledby": "history-title" },
      h("h3", { class: "details-section-title", id: "history-title" }, "Message history"),
      h("div", { class: "field" },
        h("label", { class: "field-label", for: "group-retention" }, "Keep messages"),
        select,
        h("p", { class: "field-hint" }, conversation.legal_hold
          ? "Under legal hold: nothing is deleted until the hold is lifted."
          : "Messages older than this are deleted for everyone, with their files.")),
      admin ? h("button", { type: "button", class: "btn btn-small", onclick: () => this.exportConversation() }, icon("download", { size: 15 }), " Export conversation") : null);
  }

  async exportConversation() {
    try {
      await api.requestConversationExport(this.id);
      toast("Export started: find it under Settings → Your data when it is ready");
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  memberRow(member, myRole) {
    const me = member.user_id === store.me.id;
    const name = store.displayName(member.user_id);
    const presence = store.presenceOf(member.user_id);
    const actions = [];
    if (!me && myRole === "owner") {
      if (member.role === "member") actions.push({ label: "Make admin", icon: "shield", onSelect: () => this.setRole(member, "admin") });
      if (member.role === "admin") actions.push({ label: "Remove admin role", icon: "shield", onSelect: () => this.setRole(member, "member") });
      actions.push({ label: "Make owner", icon: "shield", onSelect: () => this.transfer(member) });
    }
    if (!me && RANK[myRole] >= RANK.admin && RANK[member.role] < RANK[myRole]) {
      if (actions.length) actions.push("separator");
      actions.push({ label: "Remove from group", icon: "trash", danger: true, onSelect: () => this.remove(member) });
    }
    if (!me && this.conversation?.encrypted) {
      actions.unshift({ label: "Verify", icon: "shield", onSelect: () => openVerify(member.user_id).catch((e) => toast(e.message, { error: true })) });
    }
    if (!me && store.conversations.size) {
      actions.unshift({ label: "Send a message", icon: "message", onSelect: () => this.messagePerson(member.user_id) }, ...(actions.length ? ["separator"] : []));
    }
    return h("li", { class: "member-row", dataset: { userId: member.user_id } },
      avatar(member.user_id, name, { size: "sm", presence }),
      h("span", { class: "member-text" },
        h("span", { class: "member-name" }, name, me ? h("span", { class: "muted" }, " (you)") : null,
          member.is_bot || store.users.get(member.user_id)?.is_bot ? h("span", { class: "tag bot-tag" }, "Bot") : null),
        h("span", { class: "member-handle" }, "@" + (member.username || store.users.get(member.user_id)?.username || ""))),
      member.role !== "member" ? h("span", { class: ["role-badge", `role-${member.role}`] }, ROLE_LABEL[member.role]) : null,
      actions.length
        ? h("button", {
          type: "button",
          class: "icon-btn",
          "aria-label": `Actions for ${name}`,
          title: `Actions for ${name}`,
          "aria-haspopup": "menu",
          onclick: (event) => openMenu(event.currentTarget, actions, { label: `Actions for ${name}` }),
        }, icon("more", { size: 16 }))
        : null);
  }

  async addPeople(members) {
    const picker = peoplePicker({ multiple: true, exclude: new Set(members.map((m) => m.user_id)), label: "Find people to add" });
    openDialog({
      title: "Add people",
      label: "Add people",
      body: picker.el,
      actions: [
        { label: "Cancel" },
        {
          label: "Add",
          primary: true,
          onClick: async () => {
            const ids = picker.selected().map((u) => u.id);
            if (!ids.length) throw new Error("Choose at least one person.");
            await api.addMembers(this.id, ids);
            await loadMembers(this.id);
            toast(ids.length === 1 ? `Added ${store.displayName(ids[0])}` : `Added ${ids.length} people`);
          },
        },
      ],
    });
  }

  async setRole(member, role) {
    await this.attempt(() => api.setRole(this.id, member.user_id, role));
  }

  async transfer(member) {
    const ok = await confirmDialog({
      title: "Transfer ownership?",
      message: `${store.displayName(member.user_id)} becomes the owner of this group and you become an admin.`,
      confirmLabel: "Make owner",
    });
    if (ok) await this.attempt(() => api.setRole(this.id, member.user_id, "owner"));
  }

  async remove(member) {
    const ok = await confirmDialog({
      title: "Remove from group?",
      message: `${store.displayName(member.user_id)} will no longer see this group or its messages.`,
      confirmLabel: "Remove",
      danger: true,
    });
    if (ok) await this.attempt(() => api.removeMember(this.id, member.user_id));
  }

  async leave() {
    const ok = await confirmDialog({ title: "Leave this group?", message: "You will stop receiving its messages. Someone will have to add you back.", confirmLabel: "Leave group", danger: true });
    if (!ok) return;
    try {
      await api.removeMember(this.id, store.me.id);
      store.removeConversation(this.id);
      navigate("/");
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async deleteGroup() {
    const ok = await confirmDialog({ title: "Delete this group?", message: "The group and all of its messages are deleted for everyone. This cannot be undone.", confirmLabel: "Delete group", danger: true });
    if (!ok) return;
    try {
      await api.deleteConversation(this.id);
      store.removeConversation(this.id);
      navigate("/");
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async attempt(action) {
    try {
      await action();
      await loadMembers(this.id);
    } catch (error) {
      toast(error instanceof ApiError ? error.message : "That didn't work. Try again.", { error: true });
    }
  }

  async messagePerson(userId) {
    try {
      const conversation = await api.createDirect(userId);
      store.upsertConversation(conversation);
      navigate(`/c/${conversation.id}`);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // --- direct conversations

  direct(conversation) {
    const peer = store.peerOf(conversation);
    if (!peer) return [h("p", { class: "muted" }, "Loading…")];
    const name = store.displayName(peer.id);
    const presence = store.presence.get(peer.id);
    const status = presence?.status === "online" ? "Online" : presence?.status === "away" ? "Away" : presence?.last_seen_at ? `Last seen ${formatAgo(presence.last_seen_at)}` : "Offline";
    const rel = this.relationship;
    const buttons = [];
    if (rel) {
      if (rel.blocked) {
        buttons.push(h("button", { type: "button", class: "btn", onclick: () => this.relation(() => api.unblock(peer.id), `Unblocked ${name}`) }, "Unblock"));
      } else {
        if (!rel.contact) buttons.push(h("button", { type: "button", class: "btn", onclick: () => this.relation(() => api.requestContact(peer.id), "Contact request sent") }, icon("userPlus", { size: 15 }), " Add contact"));
        if (rel.contact === "incoming") buttons.push(h("button", { type: "button", class: "btn btn-primary", onclick: () => this.relation(() => api.acceptContact(peer.id), `${name} is now a contact`) }, "Accept contact request"));
        if (rel.contact === "outgoing") buttons.push(h("span", { class: "muted" }, "Contact request sent"));
        if (rel.contact === "accepted") buttons.push(h("span", { class: "contact-flag" }, icon("check", { size: 14 }), " In your contacts"));
        buttons.push(h("button", {
          type: "button",
          class: "btn btn-danger-ghost",
          onclick: async () => {
            const ok = await confirmDialog({ title: `Block ${name}?`, message: "They won't be able to message you or see when you're online. You can unblock them later.", confirmLabel: "Block", danger: true });
            if (ok) await this.relation(() => api.block(peer.id), `Blocked ${name}`);
          },
        }, "Block"));
      }
    }
    return [
      h("div", { class: "details-hero" },
        avatar(peer.id, name, { size: "lg", presence: store.presenceOf(peer.id) }),
        h("h3", { class: "details-name" }, name),
        h("p", { class: "muted" }, "@" + (peer.username || "")),
        h("p", { class: "details-status" }, status)),
      h("section", { class: "details-section details-actions" }, buttons),
      peer.id === store.me.id ? null : encryptionSection(conversation, { canSwitch: true, peerId: peer.id, trust: this.trust, refresh: () => store.emit("trust", { user_id: peer.id }) }),
      this.pins.el,
      this.gallery.el,
    ];
  }

  async relation(action, done) {
    try {
      await action();
      toast(done);
    } catch (error) {
      toast(error.message, { error: true });
    }
    await this.loadRelationship();
  }
}

function retentionLabel(days) {
  if (days % 365 === 0) return days === 365 ? "1 year" : `${days / 365} years`;
  return days === 1 ? "1 day" : `${days} days`;
}
