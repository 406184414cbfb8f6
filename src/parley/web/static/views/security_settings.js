// Settings → Security: change the password (other devices are signed out) and two-factor
// authentication (enrol with a QR code, confirm, recovery codes, turn off).

import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { openDialog } from "./dialogs.js";

function message(error) {
  if (error?.code === "WRONG_PASSWORD") return "Your current password is not right.";
  if (error?.code === "INVALID_CODE") return "That code isn't right. Try the current one.";
  if (error?.code === "RATE_LIMITED") return "Too many attempts. Wait a little and try again.";
  return error?.details?.[0]?.message ? capitalise(error.details[0].message) + "." : error?.message || "Something went wrong.";
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function passwordCard() {
  const current = h("input", { id: "pw-current", type: "password", class: "input", autocomplete: "current-password" });
  const next = h("input", { id: "pw-new", type: "password", class: "input", autocomplete: "new-password", "aria-describedby": "pw-hint" });
  const error = h("p", { class: "field-error", role: "alert" });
  const form = h("form", {
    class: "password-form",
    "aria-label": "Change password",
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const result = await api.changePassword(current.value, next.value);
        current.value = "";
        next.value = "";
        const others = result.sessions_revoked;
        toast(others ? `Password changed; ${others} other device${others === 1 ? " was" : "s were"} signed out` : "Password changed");
        form.dispatchEvent(new CustomEvent("password-changed", { bubbles: true }));
      } catch (failure) {
        error.textContent = message(failure);
      }
    },
  },
  h("div", { class: "field" }, h("label", { class: "field-label", for: "pw-current" }, "Current password"), current),
  h("div", { class: "field" }, h("label", { class: "field-label", for: "pw-new" }, "New password"), next,
    h("p", { class: "field-hint", id: "pw-hint" }, "At least 10 characters. Your other devices will be signed out.")),
  error,
  h("button", { type: "submit", class: "btn btn-primary" }, "Change password"));
  return h("section", { class: "card", "aria-labelledby": "password-title" },
    h("h2", { class: "card-title", id: "password-title" }, "Password"), form);
}

function recoveryCodesBody(codes) {
  return h("div", { class: "recovery-codes" },
    h("p", {}, "Keep these recovery codes somewhere safe. Each one logs you in once if you lose your phone. They are shown only now."),
    h("ul", { class: "code-list", "aria-label": "Recovery codes" }, codes.map((code) => h("li", {}, h("code", {}, code)))));
}

export class TwoFactorCard {
  constructor() {
    this.body = h("div", { class: "two-factor-body" }, h("p", { class: "muted" }, "Loading…"));
    this.el = h("section", { class: "card", "aria-labelledby": "twofa-title" },
      h("h2", { class: "card-title", id: "twofa-title" }, "Two-factor authentication"), this.body);
    this.load();
  }

  async load() {
    try {
      this.render(await api.twoFactor());
    } catch (error) {
      this.body.replaceChildren(h("p", { class: "muted" }, `Couldn't load: ${error.message}`));
    }
  }

  render(state) {
    if (state.enabled) {
      this.body.replaceChildren(
        h("p", { class: "twofa-state" }, h("span", { class: "tag tag-on" }, "On"),
          ` Logging in asks for a code from your authenticator app. ${state.recovery_codes_left} recovery code${state.recovery_codes_left === 1 ? "" : "s"} left.`),
        h("div", { class: "card-actions" },
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.renew() }, "New recovery codes"),
          h("button", { type: "button", class: "btn btn-small btn-danger-ghost", onclick: () => this.disable() }, "Turn off")));
      return;
    }
    this.body.replaceChildren(
      h("p", { class: "muted" }, "Protect your account with a code from an authenticator app (any app that supports TOTP) in addition to your password."),
      h("button", { type: "button", class: "btn btn-primary", onclick: () => this.enrol() }, "Set up two-factor authentication"));
  }

  async enrol() {
    let enrolment;
    try {
      enrolment = await api.enrolTwoFactor();
    } catch (error) {
      toast(message(error), { error: true });
      return;
    }
    const code = h("input", { id: "twofa-code", class: "input", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6" });
    const body = h("div", { class: "twofa-enrol" },
      h("p", {}, "Scan this code with your authenticator app, then type the 6-digit code it shows."),
      h("img", { class: "twofa-qr", src: enrolment.qr_svg, alt: "QR code for your authenticator app", width: "200", height: "200" }),
      h("p", { class: "field-hint" }, "Can't scan it? Enter this key: ", h("code", { class: "twofa-secret" }, enrolment.secret)),
      h("div", { class: "field" }, h("label", { class: "field-label", for: "twofa-code" }, "Code from the app"), code));
    const dialog = openDialog({
      title: "Set up two-factor authentication",
      body,
      actions: [
        { label: "Cancel" },
        {
          label: "Turn on",
          primary: true,
          onClick: async () => {
            try {
              const codes = await api.confirmTwoFactor(code.value.trim());
              this.showCodes(codes);
              this.load();
            } catch (error) {
              dialog.setError(message(error));
              return false;
            }
            return true;
          },
        },
      ],
    });
  }

  showCodes(codes) {
    openDialog({ title: "Your recovery codes", body: recoveryCodesBody(codes), actions: [{ label: "I saved them", primary: true }] });
  }

  async renew() {
    const code = h("input", { id: "twofa-renew-code", class: "input", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6" });
    const dialog = openDialog({
      title: "New recovery codes",
      body: h("div", {}, h("p", {}, "Your old recovery codes will stop working."),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "twofa-renew-code" }, "Code from the app"), code)),
      actions: [{ label: "Cancel" }, {
        label: "Make new codes",
        primary: true,
        onClick: async () => {
          try {
            this.showCodes(await api.renewRecoveryCodes(code.value.trim()));
            this.load();
          } catch (error) {
            dialog.setError(message(error));
            return false;
          }
          return true;
        },
      }],
    });
  }

  async disable() {
    const code = h("input", { id: "twofa-off-code", class: "input", autocomplete: "one-time-code", maxlength: "32" });
    const dialog = openDialog({
      title: "Turn off two-factor authentication?",
      body: h("div", {}, h("p", {}, "Logging in will need your password only."),
        h("div", { class: "field" }, h("label", { class: "field-label", for: "twofa-off-code" }, "Code from the app, or a recovery code"), code)),
      actions: [{ label: "Cancel" }, {
        label: "Turn off",
        danger: true,
        onClick: async () => {
          const value = code.value.trim();
          try {
            const state = await api.disableTwoFactor(/^\d{6}$/.test(value) ? { code: value } : { recovery_code: value });
            this.render(state);
            toast("Two-factor authentication is off");
          } catch (error) {
            dialog.setError(message(error));
            return false;
          }
          return true;
        },
      }],
    });
  }
}
