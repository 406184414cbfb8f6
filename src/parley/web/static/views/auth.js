// Log in and register: one card, inline errors under the field the server names.

import { api, ApiError, NetworkError } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { logo } from "./brand.js";
import { renderSecondFactor } from "./auth_recovery.js";

/** Render the login or register page into `root`; `onLoggedIn(user)` when done. `invite`:
 * a registration invite's token (from /register?invite=...). */
export function renderAuth(root, mode, onLoggedIn, { invite = "" } = {}) {
  const register = mode === "register";
  document.title = register ? "Create an account · Parley" : "Log in · Parley";
  const fields = {};
  const errors = {};

  function field(name, label, attrs, hint) {
    const id = `${mode}-${name}`;
    errors[name] = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
    fields[name] = h("input", { id, name, class: "input", "aria-describedby": `${id}-error${hint ? ` ${id}-hint` : ""}`, ...attrs });
    return h("div", { class: "field" },
      h("label", { for: id, class: "field-label" }, label),
      fields[name],
      hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null,
      errors[name],
    );
  }

  const formError = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, register ? "Create account" : "Log in");
  const form = h("form", { class: "auth-form", novalidate: true, "aria-label": register ? "Create an account" : "Log in" },
    field("username", "Username", { autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true, maxlength: "32" },
      register ? "3–32 characters: letters, digits, dot, dash or underscore." : null),
    register ? field("display_name", "Display name", { autocomplete: "name", maxlength: "64", placeholder: "Optional" }) : null,
    field("password", "Password", { type: "password", autocomplete: register ? "new-password" : "current-password", required: true },
      register ? "At least 10 characters. A short sentence works well." : null),
    formError,
    submit,
  );

  function clearErrors() {
    formError.textContent = "";
    for (const [name, el] of Object.entries(errors)) {
      el.textContent = "";
      fields[name].removeAttribute("aria-invalid");
    }
  }

  function showError(name, message) {
    if (errors[name]) {
      errors[name].textContent = message;
      fields[name].setAttribute("aria-invalid", "true");
      return true;
    }
    return false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const username = fields.username.value.trim();
    const password = fields.password.value;
    let invalid = false;
    if (!username) invalid = showError("username", "Enter your username.") || invalid;
    if (!password) invalid = showError("password", "Enter your password.") || invalid;
    if (invalid) {
      form.querySelector("[aria-invalid]")?.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = register ? "Creating account…" : "Logging in…";
    try {
      if (register) await api.register(username, password, fields.display_name.value.trim(), invite);
      const user = await api.login(username, password);
      onLoggedIn(user);
    } catch (error) {
      if (error instanceof ApiError && error.code === "TOTP_REQUIRED") {
        renderSecondFactor(root, error.mfaToken, onLoggedIn);
        return;
      }
      submit.disabled = false;
      submit.textContent = register ? "Create account" : "Log in";
      if (error instanceof NetworkError) {
        formError.textContent = "Can't reach the server. Check your connection and try again.";
      } else if (error instanceof ApiError) {
        let shown = false;
        for (const detail of error.details) shown = showError(detail.field, capitalise(detail.message) + ".") || shown;
        if (!shown) {
          const messages = {
            INVALID_CREDENTIALS: "That username and password don't match.",
            USERNAME_TAKEN: null,
            RATE_LIMITED: "Too many attempts. Wait a little and try again.",
            REGISTRATION_CLOSED: "Registration is closed on this server. Ask an administrator for an account.",
            INVITE_REQUIRED: "This server registers people by invitation: open the invite link you were sent.",
            INVALID_INVITE: "This invite link has expired or was already used. Ask for a new one.",
          };
          if (error.code === "USERNAME_TAKEN") showError("username", "That username is taken. Try another one.");
          else formError.textContent = messages[error.code] || error.message;
        }
      } else {
        formError.textContent = "Something went wrong. Please try again.";
      }
      (form.querySelector("[aria-invalid]") || fields.username).focus();
    }
  });

  const other = register
    ? h("p", { class: "auth-switch" }, "Already have an account? ", h("a", { href: "/login", "data-route": "" }, "Log in"))
    : h("p", { class: "auth-switch" }, "New to Parley? ", h("a", { href: "/register", "data-route": "" }, "Create an account"));
  const forgot = register ? null
    : h("p", { class: "auth-switch" }, h("a", { href: "/forgot-password", "data-route": "" }, "Forgot your password?"));
  if (register) {
    // Say up front when a form without an invite would be refused.
    api.registrationMode().then((registration) => {
      if (registration === "closed" || (registration === "invite" && !invite)) {
        formError.textContent = registration === "closed"
          ? "Registration is closed on this server. Ask an administrator for an account."
          : "This server registers people by invitation: open the invite link you were sent.";
      }
    }).catch(() => {});
  }

  replaceChildren(root,
    h("main", { class: "auth-page" },
      h("div", { class: "auth-card" },
        h("div", { class: "auth-brand" }, logo(40), h("span", { class: "brand-name" }, "Parley")),
        h("h1", { class: "auth-title" }, register ? "Create your account" : "Welcome back"),
        h("p", { class: "auth-subtitle" }, register ? "Chat with your team on your own server." : "Log in to continue to your conversations."),
        register && invite ? h("p", { class: "form-notice", role: "status" }, "You were invited: choose a username and password.") : null,
        form,
        forgot,
        other,
      ),
    ),
  );
  fields.username.focus();
}

function capitalise(text) {
  const s = String(text || "");
  return s.charAt(0).toUpperCase() + s.slice(1);
}
