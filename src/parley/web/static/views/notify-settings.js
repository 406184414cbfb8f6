// Settings → Notifications (DESIGN §6.2): the default level, push on this device, the email
// address (verified by a link) and the digest of missed messages.

import { api } from "../api.js";
import { h, icon, toast } from "../dom.js";
import { LEVELS, loadDefaults, updateDefaults } from "../notify-prefs.js";
import { disablePush, enablePush, pushState } from "../push.js";
import { store } from "../store.js";

const PUSH_TEXT = {
  on: "This device gets a notification for messages you miss, even when Parley is closed.",
  off: "Get a notification on this device for messages you miss, even when Parley is closed.",
  denied: "Notifications are blocked for Parley in this browser's site settings.",
  unsupported: "This browser can't receive push notifications.",
};

export function notificationSettingsCard() {
  const levels = h("div", { class: "segmented", role: "radiogroup", "aria-labelledby": "notify-default-title" });
  const pushText = h("p", { class: "muted", id: "push-state" });
  const pushButton = h("button", { type: "button", class: "btn", id: "push-toggle" });
  const emailSection = h("div", { class: "notify-email" });
  const card = h("section", { class: "card notify-settings", "aria-labelledby": "notify-title" },
    h("h2", { class: "card-title", id: "notify-title" }, "Notifications"),
    h("h3", { class: "field-label", id: "notify-default-title" }, "Notify me about"),
    levels,
    h("p", { class: "field-hint" }, "Each conversation can have its own setting, or be muted, from the bell in its header."),
    h("h3", { class: "field-label" }, "Push on this device"),
    pushText,
    pushButton,
    emailSection);

  const renderLevels = (current) => {
    levels.replaceChildren(...LEVELS.map(([value, label]) => h("label", { class: "segment" },
      h("input", {
        type: "radio",
        name: "notify-default",
        value,
        checked: current === value,
        onchange: async () => {
          try {
            await updateDefaults({ notify_default: value });
            toast("Saved");
          } catch (error) {
            toast(error.message, { error: true });
          }
        },
      }),
      h("span", {}, label))));
  };

  const renderPush = async (state) => {
    const now = state || (await pushState());
    pushText.textContent = PUSH_TEXT[now];
    pushButton.hidden = now === "unsupported" || now === "denied";
    pushButton.dataset.state = now;
    pushButton.replaceChildren(icon(now === "on" ? "bellOff" : "bell", { size: 15 }), now === "on" ? " Turn off on this device" : " Turn on");
  };
  pushButton.onclick = async () => {
    pushButton.disabled = true;
    try {
      await renderPush(pushButton.dataset.state === "on" ? await disablePush() : await enablePush());
    } catch (error) {
      toast(`Couldn't turn on push: ${error.message}`, { error: true });
      await renderPush();
    } finally {
      pushButton.disabled = false;
    }
  };

  const renderEmail = (email, defaults) => {
    const input = h("input", { class: "input", type: "email", id: "notify-email", value: email?.address || "", maxlength: "254", autocomplete: "email", placeholder: "name@example.org" });
    const status = email
      ? h("p", { class: ["field-hint", email.verified ? "is-ok" : "is-pending"], id: "email-status" }, email.verified ? "Confirmed." : "Waiting for confirmation: open the link we sent to this address.")
      : h("p", { class: "field-hint", id: "email-status" }, "Optional. Used for a digest of messages you miss.");
    const error = h("p", { class: "field-error", role: "alert" });
    const digest = h("input", {
      type: "checkbox",
      id: "email-digest",
      checked: Boolean(defaults?.email_digest),
      onchange: async () => {
        try {
          await updateDefaults({ email_digest: digest.checked });
        } catch (failure) {
          digest.checked = !digest.checked;
          toast(failure.message, { error: true });
        }
      },
    });
    emailSection.replaceChildren(
      h("h3", { class: "field-label" }, "Email"),
      h("form", {
        class: "notify-email-form",
        onsubmit: async (event) => {
          event.preventDefault();
          error.textContent = "";
          try {
            const saved = (await api.put("/users/me/email", { address: input.value.trim() })).email;
            toast(saved.verified ? "Saved" : "Check your inbox for a confirmation link");
            renderEmail(saved, defaults);
          } catch (failure) {
            error.textContent = failure.code === "NOT_CONFIGURED" ? "This server doesn't send email." : failure.field?.("address") || failure.message;
          }
        },
      },
      h("label", { class: "sr-only", for: "notify-email" }, "Email address"),
      h("div", { class: "notify-email-row" }, input, h("button", { type: "submit", class: "btn btn-small" }, "Save")),
      status,
      error),
      // replaceChildren() would print a null as the text "null": leave the button out instead.
      ...(email ? [h("button", {
        type: "button",
        class: "btn btn-small btn-ghost",
        onclick: async () => {
          await api.delete("/users/me/email").catch(() => {});
          renderEmail(null, defaults);
        },
      }, "Remove address")] : []),
      h("label", { class: "check-row" }, digest, h("span", {}, "Email me a digest of direct messages and mentions I miss")));
  };

  renderLevels(store.me?.notify_default || "all");
  renderPush();
  Promise.all([api.get("/users/me/email"), loadDefaults()])
    .then(([answer, defaults]) => {
      renderLevels(defaults.notify_default);
      renderEmail(answer.email, defaults);
    })
    .catch(() => renderEmail(null, null));
  return card;
}
