// The pages around logging in: the second step of a login with two-factor auth, asking
// for a password reset link, and choosing a new password from one. No session needed.

import { api, ApiError, NetworkError } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { logo } from "./brand.js";

function card(root, title, subtitle, ...content) {
  replaceChildren(root,
    h("main", { class: "auth-page" },
      h("div", { class: "auth-card" },
        h("div", { class: "auth-brand" }, logo(40), h("span", { class: "brand-name" }, "Parley")),
        h("h1", { class: "auth-title" }, title),
        subtitle ? h("p", { class: "auth-subtitle" }, subtitle) : null,
        ...content)));
}

function describe(error, messages = {}) {
  if (error instanceof NetworkError) return "Can't reach the server. Check your connection and try again.";
  if (error instanceof ApiError) {
    if (error.code === "RATE_LIMITED") return "Too many attempts. Wait a little and try again.";
    return messages[error.code] || error.details[0]?.message || error.message;
  }
  return "Something went wrong. Please try again.";
}

function backToLogin() {
  return h("p", { class: "auth-switch" }, h("a", { href: "/login", "data-route": "" }, "Back to log in"));
}

/** Ask for the 6-digit code (or a recovery code) after the password was right. */
export function renderSecondFactor(root, mfaToken, onLoggedIn) {
  document.title = "Two-factor code · Parley";
  let recovery = false;
  const input = h("input", {
    id: "mfa-code", name: "code", class: "input", autocomplete: "one-time-code", inputmode: "numeric",
    maxlength: "6", required: true, "aria-describedby": "mfa-code-error",
  });
  const label = h("label", { for: "mfa-code", class: "field-label" }, "Code from your authenticator app");
  const error = h("p", { class: "field-error", id: "mfa-code-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Verify");
  const toggle = h("button", { type: "button", class: "link-btn" }, "Use a recovery code instead");
  toggle.addEventListener("click", () => {
    recovery = !recovery;
    label.textContent = recovery ? "Recovery code" : "Code from your authenticator app";
    toggle.textContent = recovery ? "Use the authenticator app instead" : "Use a recovery code instead";
    input.setAttribute("inputmode", recovery ? "text" : "numeric");
    input.setAttribute("maxlength", recovery ? "32" : "6");
    input.value = "";
    error.textContent = "";
    input.focus();
  });
  const form = h("form", { class: "auth-form", novalidate: true, "aria-label": "Two-factor code" },
    h("div", { class: "field" }, label, input, error), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const value = input.value.trim();
    if (!value) {
      error.textContent = "Enter the code.";
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const user = await api.loginSecondFactor(mfaToken, recovery ? { recovery_code: value } : { code: value });
      onLoggedIn(user);
    } catch (failure) {
      submit.disabled = false;
      if (failure instanceof ApiError && failure.code === "INVALID_TOKEN") {
        error.textContent = "This sign-in has expired. Log in again.";
        return;
      }
      error.textContent = describe(failure, { INVALID_CODE: recovery ? "That recovery code doesn't work." : "That code isn't right. Try the current one." });
      input.setAttribute("aria-invalid", "true");
      input.select();
    }
  });
  card(root, "Two-factor authentication", "Enter the 6-digit code your authenticator app shows for Parley.",
    form, h("p", { class: "auth-switch" }, toggle), backToLogin());
  input.focus();
}

/** /forgot-password: mail a reset link. The answer is the same whether the account exists. */
export function renderForgotPassword(root) {
  document.title = "Reset your password · Parley";
  const input = h("input", { id: "forgot-who", class: "input", autocomplete: "username", autocapitalize: "none", maxlength: "254", required: true, "aria-describedby": "forgot-error" });
  const error = h("p", { class: "field-error", id: "forgot-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Send a reset link");
  const form = h("form", { class: "auth-form", novalidate: true, "aria-label": "Reset your password" },
    h("div", { class: "field" }, h("label", { for: "forgot-who", class: "field-label" }, "Username or email address"), input, error), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!input.value.trim()) {
      error.textContent = "Enter your username or email address.";
      return;
    }
    submit.disabled = true;
    try {
      await api.requestPasswordReset(input.value.trim());
      form.replaceWith(h("p", { class: "form-notice", role: "status" },
        "If that account has a confirmed email address, a reset link is on its way. It works once, for 30 minutes. No email? Ask an administrator for a reset link."));
    } catch (failure) {
      submit.disabled = false;
      error.textContent = describe(failure);
    }
  });
  card(root, "Forgot your password?", "We'll email a link to choose a new one.", form, backToLogin());
  input.focus();
}

/** /reset-password?token=...: choose a new password. */
export function renderResetPassword(root, token) {
  document.title = "Choose a new password · Parley";
  const input = h("input", { id: "reset-password", type: "password", class: "input", autocomplete: "new-password", required: true, "aria-describedby": "reset-hint reset-error" });
  const error = h("p", { class: "field-error", id: "reset-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Set new password");
  const form = h("form", { class: "auth-form", novalidate: true, "aria-label": "Choose a new password" },
    h("div", { class: "field" },
      h("label", { for: "reset-password", class: "field-label" }, "New password"), input,
      h("p", { class: "field-hint", id: "reset-hint" }, "At least 10 characters. Every device will be signed out."),
      error),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      await api.confirmPasswordReset(token, input.value);
      form.replaceWith(h("p", { class: "form-notice", role: "status" }, "Your password is changed. Log in with the new one."));
    } catch (failure) {
      submit.disabled = false;
      error.textContent = describe(failure, { INVALID_LINK: failure.message + ". Ask for a new link." });
      input.setAttribute("aria-invalid", "true");
    }
  });
  if (!token) {
    card(root, "This link does not work", "It has no token. Ask for a new reset link.", backToLogin());
    return;
  }
  card(root, "Choose a new password", null, form, backToLogin());
  input.focus();
}
