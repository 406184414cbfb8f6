// The admin console (/admin/{section}): users, reports, registration (mode and invites),
// audit log. Moderators see the reports; everything else is for administrators (the server
// checks; this only hides what would be refused).

import { api } from "../api.js";
import { formatAgo, formatFull, h, icon, toast } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { store } from "../store.js";
import { confirmDialog, openDialog } from "./dialogs.js";

const SECTIONS = [
  ["users", "Users", true],
  ["reports", "Reports", false],
  ["conversations", "Conversations", true],
  ["registration", "Registration", true],
  ["audit", "Audit log", true],
];

function failed(error) {
  if (error?.code === "LAST_ADMIN") return "At least one active administrator must remain.";
  return error?.message || "Something went wrong.";
}

export class AdminView {
  constructor(section) {
    const admin = store.me?.role === "admin";
    const allowed = SECTIONS.filter(([, , adminOnly]) => admin || !adminOnly);
    this.section = allowed.some(([name]) => name === section) ? section : allowed[0]?.[0];
    this.body = h("div", { class: "admin-body" });
    const tabs = h("nav", { class: "admin-tabs", "aria-label": "Administration sections" },
      allowed.map(([name, label]) => h("a", {
        class: ["admin-tab", name === this.section && "is-active"],
        href: `/admin/${name}`,
        "data-route": "",
        "aria-current": name === this.section ? "page" : null,
      }, label)));
    this.el = h("section", { class: "page admin-page", "aria-labelledby": "admin-title" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title", id: "admin-title" }, "Administration")),
      h("div", { class: "page-body" }, tabs, this.body));
    setPageTitle("Administration");
  }

  mount() {
    if (!this.section) {
      this.body.replaceChildren(h("p", { class: "muted" }, "Only moderators and administrators can see this page."));
      return;
    }
    ({
      users: () => this.users(),
      reports: () => this.reports(),
      conversations: () => this.conversations(),
      registration: () => this.registration(),
      audit: () => this.audit(),
    })[this.section]();
  }

  destroy() {}

  // --- users

  users() {
    const search = h("input", { class: "input", type: "search", placeholder: "Search by name or email", "aria-label": "Search users" });
    const list = h("table", { class: "admin-table", "aria-label": "Users" });
    const load = async () => {
      try {
        const { users } = await api.adminUsers({ q: search.value.trim(), limit: 100 });
        list.replaceChildren(
          h("thead", {}, h("tr", {}, ["User", "Role", "Status", "Security", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, users.map((u) => this.userRow(u, load))));
      } catch (error) {
        list.replaceChildren(h("caption", {}, failed(error)));
      }
    };
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
    this.body.replaceChildren(h("div", { class: "admin-toolbar" }, search), list);
    load();
  }

  userRow(user, reload) {
    const role = h("select", { class: "input input-small", "aria-label": `Role of ${user.username}` },
      ["user", "moderator", "admin"].map((r) => h("option", { value: r, selected: r === user.role }, r)));
    role.addEventListener("change", async () => {
      try {
        await api.adminUpdateUser(user.id, { role: role.value });
        toast(`${user.username} is now ${role.value === "user" ? "a user" : `a ${role.value}`}`);
      } catch (error) {
        toast(failed(error), { error: true });
      }
      reload();
    });
    const toggle = h("button", { type: "button", class: ["btn", "btn-small", !user.deactivated && "btn-danger-ghost"] },
      user.deactivated ? "Reactivate" : "Deactivate");
    toggle.addEventListener("click", async () => {
      if (!user.deactivated) {
        const ok = await confirmDialog({ title: `Deactivate ${user.username}?`, message: "They are signed out everywhere at once and cannot log in until reactivated.", confirmLabel: "Deactivate", danger: true });
        if (!ok) return;
      }
      try {
        await api.adminUpdateUser(user.id, { deactivated: !user.deactivated });
      } catch (error) {
        toast(failed(error), { error: true });
      }
      reload();
    });
    const more = h("button", { type: "button", class: "btn btn-small" }, "Reset link");
    more.addEventListener("click", async () => {
      try {
        const { url, expires_at: expires } = await api.adminResetLink(user.id);
        openDialog({
          title: `Reset link for ${user.username}`,
          body: h("div", {}, h("p", {}, "Give this link to the user. It works once, until ", formatFull(expires), "."),
            h("input", { class: "input reset-link", readonly: true, value: url, "aria-label": "Reset link" })),
          actions: [{ label: "Done", primary: true }],
        });
      } catch (error) {
        toast(failed(error), { error: true });
      }
    });
    const signOut = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Sign out");
    signOut.addEventListener("click", async () => {
      try {
        const { sessions_revoked: count } = await api.adminRevokeSessions(user.id);
        toast(`Signed out ${count} session${count === 1 ? "" : "s"}`);
      } catch (error) {
        toast(failed(error), { error: true });
      }
    });
    return h("tr", { class: ["admin-user", user.deactivated && "is-deactivated"], "data-username": user.username },
      h("td", {}, h("strong", {}, user.display_name), h("br"), h("span", { class: "muted" }, `@${user.username}${user.email ? ` · ${user.email}` : ""}`)),
      h("td", {}, role),
      h("td", {}, user.deactivated ? h("span", { class: "tag" }, "Deactivated") : user.last_seen_at ? `seen ${formatAgo(user.last_seen_at)}` : "active"),
      h("td", {}, user.two_factor ? "2FA on" : "password only"),
      h("td", {}, h("div", { class: "admin-actions" }, toggle, more, signOut)));
  }

  // --- reports

  async reports() {
    const list = h("ul", { class: "report-list", "aria-label": "Open reports" }, h("li", { class: "muted" }, "Loading…"));
    this.body.replaceChildren(list);
    try {
      const { reports } = await api.adminReports({ status: "open" });
      if (!reports.length) {
        list.replaceChildren(h("li", { class: "muted" }, "No open reports."));
        return;
      }
      list.replaceChildren(...reports.map((report) => {
        const act = async (action) => {
          try {
            await api.adminResolveReport(report.id, action);
            toast("Report resolved");
          } catch (error) {
            toast(failed(error), { error: true });
          }
          this.reports();
        };
        return h("li", { class: "report-row" },
          h("p", { class: "report-message" }, h("strong", {}, `@${report.sender_username || "deleted user"}: `),
            report.message.deleted ? h("em", {}, "deleted") : report.message.content),
          h("p", { class: "muted" }, `Reported by @${report.reporter_username} ${formatAgo(report.created_at)}: `, h("q", {}, report.reason)),
          h("div", { class: "card-actions" },
            h("button", { type: "button", class: "btn btn-small", onclick: () => act("dismiss") }, "Dismiss"),
            h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => act("delete_message") }, "Delete message"),
            h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => act("deactivate_sender") }, "Deactivate sender")));
      }));
    } catch (error) {
      list.replaceChildren(h("li", { class: "muted" }, failed(error)));
    }
  }

  // --- conversations

  conversations() {
    const search = h("input", { class: "input", type: "search", placeholder: "Search groups by name", "aria-label": "Search conversations" });
    const list = h("table", { class: "admin-table", "aria-label": "Conversations" });
    const load = async () => {
      try {
        const { conversations } = await api.adminConversations({ q: search.value.trim(), limit: 100 });
        list.replaceChildren(
          h("thead", {}, h("tr", {}, ["Conversation", "Members", "Last activity", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, conversations.map((c) => {
            const label = c.type === "direct" ? "Direct conversation" : c.name;
            const remove = h("button", { type: "button", class: "btn btn-small btn-danger-ghost" }, "Delete");
            remove.addEventListener("click", async () => {
              const ok = await confirmDialog({ title: `Delete “${label}”?`, message: "Every message and file in it is deleted for all its members. This cannot be undone.", confirmLabel: "Delete", danger: true });
              if (!ok) return;
              try {
                await api.adminDeleteConversation(c.id);
                toast("Conversation deleted");
              } catch (error) {
                toast(failed(error), { error: true });
              }
              load();
            });
            const archive = h("button", { type: "button", class: "btn btn-small" }, c.archived ? "Unarchive" : "Archive");
            archive.addEventListener("click", async () => {
              try {
                await api.adminArchiveConversation(c.id, !c.archived);
                toast(c.archived ? "Conversation unarchived" : "Conversation archived: it is read-only now");
              } catch (error) {
                toast(failed(error), { error: true });
              }
              load();
            });
            return h("tr", { class: "admin-conversation", "data-conversation-id": c.id },
              h("td", {}, h("strong", {}, label), c.slug ? h("span", { class: "muted" }, ` /g/${c.slug}`) : null,
                c.archived ? h("span", { class: "role-badge admin-archived" }, "Archived") : null),
              h("td", {}, String(c.member_count)),
              h("td", { title: formatFull(c.last_activity_at) }, formatAgo(c.last_activity_at)),
              h("td", {}, h("div", { class: "admin-actions" }, archive, remove)));
          })));
      } catch (error) {
        list.replaceChildren(h("caption", {}, failed(error)));
      }
    };
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
    this.body.replaceChildren(h("div", { class: "admin-toolbar" }, search), list);
    load();
  }

  // --- registration

  async registration() {
    const mode = h("select", { class: "input", id: "registration-mode" },
      [["open", "Open: anyone can register"], ["invite", "Invite only"], ["closed", "Closed"]].map(([value, label]) => h("option", { value }, label)));
    const invites = h("ul", { class: "invite-list", "aria-label": "Invites" });
    const uses = h("select", { class: "input input-small", "aria-label": "Uses" },
      [["1", "Single use"], ["10", "10 uses"], ["", "Unlimited"]].map(([value, label]) => h("option", { value }, label)));
    const create = h("button", { type: "button", class: "btn btn-primary btn-small" }, "Create invite link");
    this.body.replaceChildren(
      h("section", { class: "card" }, h("h2", { class: "card-title" }, "Who can register"),
        h("label", { class: "field-label", for: "registration-mode" }, "Registration"), mode),
      h("section", { class: "card" }, h("h2", { class: "card-title" }, "Invite links"),
        h("div", { class: "admin-toolbar" }, uses, create), invites));
    const loadInvites = async () => {
      const found = await api.adminInvites();
      invites.replaceChildren(...found.map((invite) => h("li", { class: "invite-row" },
        h("span", {}, `${invite.max_uses === null ? "Unlimited" : `${invite.uses}/${invite.max_uses} used`} · ${invite.state}`,
          invite.expires_at ? ` · expires ${formatFull(invite.expires_at)}` : ""),
        invite.state === "active"
          ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: async () => { await api.adminRevokeInvite(invite.id); loadInvites(); } }, "Revoke")
          : null)));
      if (!found.length) invites.replaceChildren(h("li", { class: "muted" }, "No invites yet."));
    };
    mode.addEventListener("change", async () => {
      try {
        await api.adminUpdateSettings({ registration: mode.value });
        toast("Registration updated");
      } catch (error) {
        toast(failed(error), { error: true });
      }
    });
    create.addEventListener("click", async () => {
      try {
        const invite = await api.adminCreateInvite({ max_uses: uses.value ? Number(uses.value) : null });
        openDialog({
          title: "Invite link",
          body: h("div", {}, h("p", {}, "Send this link. It is shown only now."),
            h("input", { class: "input invite-url", readonly: true, value: invite.url, "aria-label": "Invite link" })),
          actions: [{ label: "Done", primary: true }],
        });
        loadInvites();
      } catch (error) {
        toast(failed(error), { error: true });
      }
    });
    mode.disabled = true; // until the current mode is known
    try {
      mode.value = (await api.adminSettings()).registration;
      await loadInvites();
    } catch (error) {
      toast(failed(error), { error: true });
    }
    mode.disabled = false;
  }

  // --- audit

  async audit() {
    const filter = h("input", { class: "input", type: "search", placeholder: "Action, e.g. login.failed", "aria-label": "Filter by action" });
    const list = h("table", { class: "admin-table", "aria-label": "Audit log" },
      h("thead", {}, h("tr", {}, ["When", "Action", "Who", "Target", "Address"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody"));
    filter.addEventListener("change", () => { list.tBodies[0].replaceChildren(); this.fillAudit(list, filter.value.trim(), null); });
    this.body.replaceChildren(h("div", { class: "admin-toolbar" }, filter), list);
    await this.fillAudit(list, "", null);
  }

  async fillAudit(list, action, before) {
    try {
      const { entries, has_more: more } = await api.adminAudit({ action, before, limit: 50 });
      list.querySelector(".audit-more")?.remove();
      list.tBodies[0].append(...entries.map((e) => h("tr", { class: "audit-row" },
        h("td", { title: formatFull(e.at) }, formatAgo(e.at)),
        h("td", {}, h("code", {}, e.action)),
        h("td", {}, e.actor_id || "—"),
        h("td", {}, e.target_user_id || e.target_id || "—"),
        h("td", {}, e.ip_address || "—"))));
      if (more) {
        const last = entries[entries.length - 1].id;
        list.tBodies[0].append(h("tr", { class: "audit-more" }, h("td", { colspan: "5" },
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.fillAudit(list, action, last) }, "Older entries"))));
      }
    } catch (error) {
      toast(failed(error), { error: true });
    }
  }
}
