// The page an invite link opens (/invite/{token}): which group it is, and a button to join
// it (POST /invites/{token}/join). Signed-out visitors log in first and come back here.

import { api, ApiError } from "../api.js";
import { groupAvatar, h, icon } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { conversationPath, navigate } from "../router.js";
import { store } from "../store.js";

export class InviteView {
  constructor(token) {
    this.token = token;
    setPageTitle("Invitation");
    this.card = h("div", { class: "home-card invite-card" }, h("span", { class: "spinner" }));
    this.el = h("div", { class: "home invite" }, this.card);
  }

  mount() {
    this.load();
  }

  async load() {
    try {
      const preview = await api.invite(this.token);
      this.render(preview);
    } catch (error) {
      this.fail(error instanceof ApiError && error.status === 404 ? "This invite link doesn't exist." : error.message);
    }
  }

  render(preview) {
    const group = preview.conversation;
    const button = preview.joined
      ? h("a", { class: "btn btn-primary", href: conversationPath(group.id), "data-route": "" }, "Open the group")
      : h("button", { type: "button", class: "btn btn-primary", disabled: !preview.usable, onclick: () => this.join() }, "Join the group");
    this.card.replaceChildren(
      groupAvatar(group.id, group.name, { size: "lg" }),
      h("h1", { class: "home-title" }, group.name),
      h("p", { class: "muted" }, [`${group.member_count} members`, group.topic].filter(Boolean).join(" · ")),
      preview.usable || preview.joined ? null : h("p", { class: "form-error", role: "alert" }, "This invite link has expired, was revoked or has been used up."),
      button);
  }

  async join() {
    try {
      const conversation = await api.joinByInvite(this.token);
      store.upsertConversation(conversation);
      navigate(conversationPath(conversation.id), { replace: true });
    } catch (error) {
      this.fail(error.message);
    }
  }

  fail(text) {
    this.card.replaceChildren(
      h("div", { class: "center-icon" }, icon("lock", { size: 28 })),
      h("h1", { class: "home-title" }, "Can't join"),
      h("p", { class: "muted", role: "alert" }, text || "Something went wrong."),
      h("a", { class: "btn", href: "/", "data-route": "" }, "Back to your conversations"));
  }
}
