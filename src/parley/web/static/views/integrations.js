// Integrations in the web client (DESIGN §6.6): the bots you own (Settings → Bots), and a
// group's webhooks and slash commands (its details panel, for owners and admins). A token, a webhook URL or a
// signing secret is shown once, when made or rotated, with a copy button: the server keeps
// only what it needs (hashes for tokens and incoming URLs).

import { api } from "../api.js";
import { avatar, formatAgo, h, toast } from "../dom.js";
import { store } from "../store.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { showOnce } from "./secret_box.js";

// --- Settings → Bots

export class BotsCard {
  constructor() {
    this.list = h("ul", { class: "bot-list", "aria-label": "Your bots" }, h("li", { class: "muted" }, "Loading…"));
    const username = h("input", { class: "input", id: "bot-username", placeholder: "username, e.g. deploy-bot", maxlength: "32", autocomplete: "off" });
    const display = h("input", { class: "input", id: "bot-display-name", placeholder: "Display name (optional)", maxlength: "64", autocomplete: "off" });
    const error = h("p", { class: "field-error", role: "alert" });
    const form = h("form", {
      class: "bot-form",
      "aria-label": "Create a bot",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          const created = await api.createBot(username.value.trim(), display.value.trim());
          username.value = "";
          display.value = "";
          showOnce(`Bot @${created.bot.username} created`, "Its token", created.token);
          this.load();
        } catch (failure) {
          error.textContent = failure.field?.("username") || failure.field?.("display_name") || failure.message;
        }
      },
    },
    h("div", { class: "bot-form-row" },
      h("label", { class: "field-label sr-only", for: "bot-username" }, "Bot username"), username,
      h("label", { class: "field-label sr-only", for: "bot-display-name" }, "Bot display name"), display,
      h("button", { type: "submit", class: "btn btn-primary" }, "Create bot")),
    error);
    this.el = h("section", { class: "card", "aria-labelledby": "bots-title" },
      h("h2", { class: "card-title", id: "bots-title" }, "Bots"),
      h("p", { class: "field-hint" }, "A bot signs in with its token (Authorization: Bot …) and acts only in the groups you add it to. See docs/integrations.md."),
      this.list,
      form);
    this.load();
  }

  async load() {
    try {
      const bots = await api.bots();
      if (!bots.length) {
        this.list.replaceChildren(h("li", { class: "muted" }, "No bots yet."));
        return;
      }
      for (const bot of bots) store.rememberUser(bot);
      this.list.replaceChildren(...bots.map((bot) => h("li", { class: "bot-row" },
        avatar(bot.id, bot.display_name || bot.username, { size: "sm" }),
        h("span", { class: "bot-text" },
          h("span", { class: "bot-name" }, bot.display_name, " ", h("span", { class: "tag" }, "Bot")),
          h("span", { class: "bot-meta" }, `@${bot.username} · token from ${formatAgo(bot.token_issued_at || bot.created_at)}`)),
        this.pictureButtons(bot),
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.rotate(bot) }, "New token"),
        h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => this.remove(bot) }, "Delete"))));
    } catch (failure) {
      this.list.replaceChildren(h("li", { class: "muted" }, `Couldn't load bots: ${failure.message}`));
    }
  }

  /** "Picture" (any JPEG, PNG, GIF or WebP; cropped square by the server) and, when the
   * bot has one, "Remove picture". */
  pictureButtons(bot) {
    const id = `bot-picture-${bot.id}`;
    const input = h("input", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp", class: "sr-only", id });
    const change = h("label", { class: "btn btn-small btn-ghost", for: id, "aria-label": `Picture for @${bot.username}` }, "Picture");
    input.addEventListener("change", async () => {
      const file = input.files?.[0];
      input.value = "";
      if (!file) return;
      change.classList.add("is-busy");
      await this.changePicture(() => api.setBotPicture(bot.id, file), "Picture updated");
      change.classList.remove("is-busy");
    });
    const remove = bot.avatar
      ? h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Remove the picture of @${bot.username}`,
        onclick: () => this.changePicture(() => api.removeBotPicture(bot.id), "Picture removed") }, "Remove picture")
      : null;
    return h("span", { class: "bot-picture-actions" }, input, change, remove);
  }

  async changePicture(request, done) {
    try {
      store.rememberUser(await request());
      toast(done);
      this.load();
    } catch (failure) {
      toast(failure.message || "Couldn't use that picture", { error: true });
    }
  }

  async rotate(bot) {
    const ok = await confirmDialog({ title: `New token for @${bot.username}?`, message: "The current token stops working at once.", confirmLabel: "New token" });
    if (!ok) return;
    try {
      const rotated = await api.rotateBotToken(bot.id);
      showOnce(`New token for @${bot.username}`, "Its token", rotated.token);
      this.load();
    } catch (failure) {
      toast(failure.message, { error: true });
    }
  }

  async remove(bot) {
    const ok = await confirmDialog({ title: `Delete @${bot.username}?`, message: "Its token stops working at once; its messages stay.", confirmLabel: "Delete bot", danger: true });
    if (!ok) return;
    try {
      await api.deleteBot(bot.id);
      toast("Bot deleted");
      this.load();
    } catch (failure) {
      toast(failure.message, { error: true });
    }
  }
}

// --- a group's webhooks and slash commands (details panel)

export class IntegrationsSection {
  constructor(conversationId) {
    this.id = conversationId;
    this.list = h("ul", { class: "webhook-list", "aria-label": "Webhooks" });
    this.commandList = h("ul", { class: "webhook-list command-list", "aria-label": "Slash commands" });
    this.el = h("section", { class: "details-section webhooks-section", "aria-labelledby": `webhooks-title-${conversationId}` },
      h("div", { class: "details-section-head" },
        h("h3", { class: "details-section-title", id: `webhooks-title-${conversationId}` }, "Integrations"),
        h("div", { class: "details-actions" },
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.addIncoming() }, "Incoming webhook"),
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.addOutgoing() }, "Outgoing webhook"),
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.addCommand() }, "Slash command"))),
      this.list,
      this.commandList);
    this.load();
  }

  async load() {
    try {
      const [hooks, commands] = await Promise.all([api.webhooks(this.id), api.commands(this.id)]);
      this.list.replaceChildren(...(hooks.length ? hooks.map((hook) => this.row(hook)) : [h("li", { class: "muted" }, "No webhooks.")]));
      const own = commands.filter((command) => command.conversation_id === this.id);
      this.commandList.replaceChildren(...own.map((command) => h("li", { class: "webhook-row" },
        h("span", { class: "webhook-text" },
          h("span", { class: "webhook-name" }, `/${command.name}`, " ", h("span", { class: "tag" }, "Command")),
          h("span", { class: "webhook-meta" }, command.description || command.url)),
        h("button", { type: "button", class: "btn btn-small btn-danger-ghost", "aria-label": `Delete command /${command.name}`, onclick: () => this.removeCommand(command) }, "Delete"))));
    } catch (failure) {
      this.list.replaceChildren(h("li", { class: "muted" }, `Couldn't load webhooks: ${failure.message}`));
    }
  }

  addCommand() {
    const name = h("input", { class: "input", id: "command-name", placeholder: "weather", maxlength: "32", autofocus: true });
    const url = h("input", { class: "input", id: "command-url", type: "url", placeholder: "https://example.com/commands/weather" });
    const description = h("input", { class: "input", id: "command-description", placeholder: "What it does, shown in the composer", maxlength: "200" });
    openDialog({
      title: "Add a slash command",
      body: h("div", { class: "stack" },
        h("div", { class: "field" }, h("label", { class: "field-label", for: "command-name" }, "Name"), name),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "command-url" }, "URL"), url),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "command-description" }, "Description"), description),
        h("p", { class: "field-hint" }, "/name args POSTs a signed request to the URL; its {\"text\"} answer is shown to the caller, or posted with \"response_type\": \"in_channel\".")),
      actions: [{ label: "Cancel" }, {
        label: "Create",
        primary: true,
        onClick: async () => {
          const command = await api.registerCommand({ name: name.value.trim(), url: url.value.trim(), description: description.value.trim(), conversation_id: this.id });
          showOnce(`Command /${command.name}`, "Its signing secret", command.secret);
          this.load();
        },
      }],
    });
  }

  async removeCommand(command) {
    const ok = await confirmDialog({ title: `Delete /${command.name}?`, message: "It stops working here at once.", confirmLabel: "Delete", danger: true });
    if (!ok) return;
    try {
      await api.deleteCommand(command.id);
      this.load();
    } catch (failure) {
      toast(failure.message, { error: true });
    }
  }

  row(hook) {
    const state = hook.kind === "outgoing"
      ? (hook.enabled ? `to ${hook.url}${hook.triggers.length ? ` · on ${hook.triggers.join(", ")}` : ""}` : `disabled after ${hook.failures} failures`)
      : "posts from a URL";
    return h("li", { class: ["webhook-row", !hook.enabled && "is-disabled"] },
      h("span", { class: "webhook-text" },
        h("span", { class: "webhook-name" }, hook.name, " ", h("span", { class: "tag" }, hook.kind === "incoming" ? "Incoming" : "Outgoing")),
        h("span", { class: "webhook-meta" }, state)),
      hook.kind === "outgoing" ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.deliveries(hook) }, "Deliveries") : null,
      hook.kind === "outgoing" && !hook.enabled
        ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.enable(hook) }, "Enable") : null,
      h("button", { type: "button", class: "btn btn-small btn-danger-ghost", "aria-label": `Delete webhook ${hook.name}`, onclick: () => this.remove(hook) }, "Delete"));
  }

  addIncoming() {
    const name = h("input", { class: "input", id: "webhook-name", placeholder: "Name shown on its posts, e.g. CI", maxlength: "64", autofocus: true });
    openDialog({
      title: "Add an incoming webhook",
      body: h("div", { class: "field" }, h("label", { class: "field-label", for: "webhook-name" }, "Name"), name,
        h("p", { class: "field-hint" }, "Anything that POSTs {\"text\": \"…\"} to its URL posts here.")),
      actions: [{ label: "Cancel" }, {
        label: "Create",
        primary: true,
        onClick: async () => {
          const hook = await api.createWebhook(this.id, { kind: "incoming", name: name.value.trim() || null });
          showOnce(`Webhook ${hook.name}`, "Its URL", hook.url);
          this.load();
        },
      }],
    });
  }

  addOutgoing() {
    const url = h("input", { class: "input", id: "webhook-url", type: "url", placeholder: "https://example.com/parley", autofocus: true });
    const triggers = h("input", { class: "input", id: "webhook-triggers", placeholder: "Trigger words, e.g. !deploy !status (empty: every message)" });
    const name = h("input", { class: "input", id: "webhook-out-name", placeholder: "Name of its bot", maxlength: "64" });
    openDialog({
      title: "Add an outgoing webhook",
      body: h("div", { class: "stack" },
        h("div", { class: "field" }, h("label", { class: "field-label", for: "webhook-url" }, "URL"), url),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "webhook-triggers" }, "Trigger words"), triggers),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "webhook-out-name" }, "Name"), name),
        h("p", { class: "field-hint" }, "Messages are POSTed signed (X-Parley-Signature); a {\"text\": \"…\"} answer is posted back.")),
      actions: [{ label: "Cancel" }, {
        label: "Create",
        primary: true,
        onClick: async () => {
          const words = triggers.value.split(/\s+/).filter(Boolean);
          const hook = await api.createWebhook(this.id, { kind: "outgoing", url: url.value.trim(), triggers: words, name: name.value.trim() || null });
          showOnce(`Webhook ${hook.name}`, "Its signing secret", hook.secret);
          this.load();
        },
      }],
    });
  }

  async deliveries(hook) {
    const list = h("ul", { class: "delivery-list", "aria-label": "Deliveries" }, h("li", { class: "muted" }, "Loading…"));
    openDialog({ title: `Deliveries of ${hook.name}`, body: list, actions: [{ label: "Close", primary: true }] });
    try {
      const log = await api.webhookDeliveries(this.id, hook.id);
      list.replaceChildren(...(log.length ? log.map((d) => h("li", { class: ["delivery-row", `is-${d.status}`] },
        h("span", { class: "delivery-status" }, d.status),
        h("span", { class: "delivery-meta" }, [`${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`, d.response_status && `HTTP ${d.response_status}`, d.error, formatAgo(d.updated_at)].filter(Boolean).join(" · "))))
        : [h("li", { class: "muted" }, "Nothing delivered yet.")]));
    } catch (failure) {
      list.replaceChildren(h("li", { class: "muted" }, failure.message));
    }
  }

  async enable(hook) {
    try {
      await api.updateWebhook(this.id, hook.id, { enabled: true });
      this.load();
    } catch (failure) {
      toast(failure.message, { error: true });
    }
  }

  async remove(hook) {
    const ok = await confirmDialog({ title: `Delete webhook ${hook.name}?`, message: hook.kind === "incoming" ? "Its URL stops working at once." : "Nothing more is sent to its URL.", confirmLabel: "Delete", danger: true });
    if (!ok) return;
    try {
      await api.deleteWebhook(this.id, hook.id);
      this.load();
    } catch (failure) {
      toast(failure.message, { error: true });
    }
  }
}
