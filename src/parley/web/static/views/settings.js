// Settings: profile (display name), password and two-factor auth, devices (sessions) with
// sign-out, notifications, bots, theme, and your data: exports (with live progress) and
// deleting the account (docs/lifecycle.md).

import { api } from "../api.js";
import { formatAgo, h, icon, toast } from "../dom.js";
import { setPageTitle } from "../notify.js";
import { store } from "../store.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { BotsCard } from "./integrations.js";
import { notificationSettingsCard } from "./notify-settings.js";
import { profilePicture } from "./profile_picture.js";
import { KeyBackupCard } from "./key_backup_settings.js";
import { passwordCard, TwoFactorCard } from "./security_settings.js";

const THEME_KEY = "parley.theme";

export function applyTheme() {
  let theme = "system";
  try {
    theme = localStorage.getItem(THEME_KEY) || "system";
  } catch {
    /* default */
  }
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  return theme;
}

export class SettingsView {
  constructor({ onLoggedOut }) {
    this.onLoggedOut = onLoggedOut;
    this.sessions = h("ul", { class: "session-list", "aria-label": "Signed-in devices" }, h("li", { class: "muted" }, "Loading…"));
    this.el = h("section", { class: "page settings-page", "aria-labelledby": "settings-title" },
      h("header", { class: "page-head" },
        h("a", { class: "icon-btn back-btn", href: "/", "data-route": "", "aria-label": "Back to conversations" }, icon("back")),
        h("h1", { class: "page-title", id: "settings-title" }, "Settings")),
      h("div", { class: "page-body" },
        this.profileCard(),
        passwordCard(),
        new TwoFactorCard().el,
        new KeyBackupCard().el,
        h("section", { class: "card", "aria-labelledby": "sessions-title" },
          h("div", { class: "card-head" },
            h("h2", { class: "card-title", id: "sessions-title" }, "Where you're signed in"),
            h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => this.logoutEverywhere() }, "Sign out everywhere")),
          this.sessions),
        notificationSettingsCard(),
        new BotsCard().el,
        this.themeCard(),
        this.dataCard()));
    setPageTitle("Settings");
    this.exportsById = new Map();
    this.offExports = store.on("export.updated", (data) => {
      if (!data?.export) return;
      this.exportsById.set(data.export.id, data.export);
      this.renderExports();
    });
    this.el.addEventListener("password-changed", () => this.loadSessions());
  }

  mount() {
    this.loadSessions();
    this.loadExports();
  }

  destroy() {
    this.offExports();
  }

  dataCard() {
    this.exportList = h("ul", { class: "export-list", "aria-label": "Your exports" });
    return h("section", { class: "card", "aria-labelledby": "data-title" },
      h("div", { class: "card-head" },
        h("h2", { class: "card-title", id: "data-title" }, "Your data"),
        h("button", { type: "button", class: "btn btn-small", id: "export-data", onclick: () => this.requestExport() }, icon("download", { size: 15 }), " Export my data")),
      h("p", { class: "muted" }, "A ZIP of your profile, devices, contacts, conversations, the messages you sent and your files. Download links work for 7 days."),
      this.exportList,
      h("div", { class: "danger-zone" },
        h("h3", { class: "card-subtitle" }, "Delete account"),
        h("p", { class: "muted" }, "Your profile, files and sessions are erased and you are signed out everywhere. Your username stays reserved. This cannot be undone."),
        h("button", { type: "button", class: "btn btn-danger-ghost", id: "delete-account", onclick: () => this.deleteAccount() }, icon("trash", { size: 15 }), " Delete my account")));
  }

  async loadExports() {
    try {
      for (const item of await api.exports()) this.exportsById.set(item.id, item);
    } catch {
      /* the list stays empty */
    }
    this.renderExports();
  }

  renderExports() {
    const items = [...this.exportsById.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    this.exportList.replaceChildren(...items.map((item) => {
      const conversation = store.conversations.get(item.conversation_id);
      const what = item.kind !== "conversation" ? "Personal data" : conversation ? store.title(conversation) : "A conversation you left";
      const status = item.status === "ready"
        ? h("a", { class: "btn btn-small btn-primary", href: item.download_url, download: "" }, icon("download", { size: 15 }), " Download")
        : item.status === "failed"
          ? h("span", { class: "field-error" }, "Failed")
          : h("progress", { max: "100", value: String(item.progress || 0), "aria-label": `Export progress of ${what}` });
      return h("li", { class: "export-row", dataset: { exportId: item.id, status: item.status } },
        h("span", { class: "session-text" },
          h("span", { class: "session-name" }, what),
          h("span", { class: "session-meta" }, `requested ${formatAgo(item.created_at)}`)),
        status);
    }));
  }

  async requestExport() {
    try {
      const item = await api.requestExport();
      this.exportsById.set(item.id, item);
      this.renderExports();
      toast("Export started");
    } catch (error) {
      toast(error.status === 429 ? "You have asked for several exports today; try again tomorrow." : error.message, { error: true });
    }
  }

  deleteAccount() {
    const password = h("input", { class: "input", type: "password", id: "delete-password", autocomplete: "current-password", autofocus: true });
    openDialog({
      title: "Delete your account?",
      label: "Delete your account",
      body: h("div", {},
        h("p", {}, "Everything you uploaded and your profile are erased, and you are signed out on every device. This cannot be undone."),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "delete-password" }, "Your password"), password)),
      actions: [
        { label: "Cancel" },
        {
          label: "Delete my account",
          danger: true,
          onClick: async () => {
            if (!password.value) throw new Error("Enter your password to confirm.");
            try {
              await api.deleteAccount(password.value);
            } catch (error) {
              if (error.code === "INVALID_PASSWORD") throw new Error("That password is not right.");
              throw error;
            }
            this.onLoggedOut(false);
          },
        },
      ],
    });
  }

  profileCard() {
    const me = store.me;
    const input = h("input", { class: "input", id: "profile-display-name", value: me.display_name || "", maxlength: "64", autocomplete: "name" });
    const error = h("p", { class: "field-error", role: "alert" });
    const form = h("form", {
      class: "profile-form",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          const user = await api.updateMe({ display_name: input.value.trim() });
          store.setMe(user);
          toast("Profile saved");
        } catch (failure) {
          error.textContent = failure.field?.("display_name") || failure.message;
        }
      },
    },
    h("div", { class: "profile-row" },
      profilePicture(),
      h("div", { class: "field grow" },
        h("label", { class: "field-label", for: "profile-display-name" }, "Display name"),
        input,
        h("p", { class: "field-hint" }, `Your username is @${me.username}. People can mention you with it.`),
        error)),
    h("button", { type: "submit", class: "btn btn-primary" }, "Save profile"));
    return h("section", { class: "card", "aria-labelledby": "profile-title" }, h("h2", { class: "card-title", id: "profile-title" }, "Profile"), form);
  }

  themeCard() {
    const current = applyTheme();
    const options = [["system", "Match system"], ["light", "Light"], ["dark", "Dark"]];
    return h("section", { class: "card", "aria-labelledby": "theme-title" },
      h("h2", { class: "card-title", id: "theme-title" }, "Appearance"),
      h("div", { class: "segmented", role: "radiogroup", "aria-labelledby": "theme-title" },
        options.map(([value, label]) => h("label", { class: "segment" },
          h("input", {
            type: "radio",
            name: "theme",
            value,
            checked: current === value,
            onchange: () => {
              try {
                if (value === "system") localStorage.removeItem(THEME_KEY);
                else localStorage.setItem(THEME_KEY, value);
              } catch {
                /* not saved */
              }
              applyTheme();
            },
          }),
          h("span", {}, label)))));
  }

  async loadSessions() {
    try {
      const sessions = await api.sessions();
      this.sessions.replaceChildren(...sessions.map((s) => h("li", { class: ["session-row", s.current && "is-current"] },
        h("span", { class: "session-icon" }, icon("lock", { size: 16 })),
        h("span", { class: "session-text" },
          h("span", { class: "session-name" }, s.device_name || describeAgent(s.user_agent), s.current ? h("span", { class: "tag" }, "This device") : null),
          h("span", { class: "session-meta" }, [s.ip_address, `active ${formatAgo(s.last_used_at)}`].filter(Boolean).join(" · "))),
        s.current
          ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.onLoggedOut(true) }, "Log out")
          : h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.revoke(s) }, "Sign out"))));
    } catch (error) {
      this.sessions.replaceChildren(h("li", { class: "muted" }, `Couldn't load sessions: ${error.message}`));
    }
  }

  async revoke(session) {
    try {
      await api.revokeSession(session.id);
      toast("Signed out that device");
    } catch (error) {
      toast(error.message, { error: true });
    }
    this.loadSessions();
  }

  async logoutEverywhere() {
    const ok = await confirmDialog({ title: "Sign out everywhere?", message: "Every device, this one included, will need to log in again.", confirmLabel: "Sign out everywhere", danger: true });
    if (!ok) return;
    try {
      await api.logoutEverywhere();
    } finally {
      this.onLoggedOut(false);
    }
  }
}

function describeAgent(agent) {
  if (!agent) return "Unknown device";
  if (/python-httpx|parley/i.test(agent)) return "Parley SDK / CLI";
  const browser = /Firefox\//.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrome\//.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "Browser";
  return browser;
}
