// Modal dialogs (native <dialog>: focus trap and Escape for free), a confirm box, a people
// picker, and the two "new conversation" dialogs.

import { api } from "../api.js";
import { avatar, h, icon, iconButton, replaceChildren, toast } from "../dom.js";
import { navigate, conversationPath } from "../router.js";
import { store } from "../store.js";

/** Open a modal. actions: [{label, primary, danger, onClick(): false keeps it open}]. */
export function openDialog({ title, body, actions = [], className = "", onClose, label }) {
  const error = h("p", { class: "form-error dialog-error", role: "alert" });
  const footer = h("footer", { class: "dialog-actions" });
  const dialog = h("dialog", { class: ["dialog", className], "aria-label": label || title },
    h("header", { class: "dialog-head" },
      h("h2", { class: "dialog-title" }, title),
      iconButton("x", "Close", () => close()),
    ),
    h("div", { class: "dialog-body" }, body, error),
    footer,
  );
  const buttons = actions.map((action) => {
    const button = h("button", {
      type: action.submit ? "submit" : "button",
      class: ["btn", action.primary && "btn-primary", action.danger && "btn-danger"],
      onclick: async () => {
        error.textContent = "";
        if (!action.onClick) return close();
        button.disabled = true;
        try {
          const keep = await action.onClick();
          if (keep !== false) close();
        } catch (failure) {
          error.textContent = failure?.message || "Something went wrong.";
        } finally {
          button.disabled = false;
        }
      },
    }, action.label);
    footer.append(button);
    return button;
  });
  if (!actions.length) footer.remove();
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    onClose?.();
  }
  dialog.addEventListener("close", close);
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  document.body.append(dialog);
  dialog.showModal();
  (dialog.querySelector("[autofocus]") || dialog.querySelector("input, textarea, select") || buttons.find((b) => b.classList.contains("btn-primary")) || dialog).focus();
  return { dialog, close, setError: (text) => { error.textContent = text; }, buttons };
}

export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    openDialog({
      title,
      className: "dialog-small",
      body: h("p", { class: "dialog-text" }, message),
      actions: [
        { label: "Cancel" },
        { label: confirmLabel, primary: !danger, danger, onClick: () => { answer = true; } },
      ],
      onClose: () => resolve(answer),
    });
  });
}

/**
 * Search people by name. `multiple`: chips of chosen people. `exclude`: ids not offered.
 * Returns {el, selected(), focus()}; `onPick(user)` fires for single pickers.
 */
export function peoplePicker({ multiple = false, exclude = new Set(), onPick, label = "Search people" } = {}) {
  const chosen = new Map();
  const input = h("input", { class: "input", type: "search", placeholder: "Type a name or username", "aria-label": label, autocomplete: "off", autofocus: true });
  const results = h("ul", { class: "people-results", role: "listbox", "aria-label": "People" });
  const chips = h("div", { class: "chips", "aria-live": "polite" });
  let seq = 0;
  let active = -1;

  async function search() {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) {
      replaceChildren(results);
      return;
    }
    let users = [];
    try {
      users = await api.searchUsers(q);
    } catch {
      users = [];
    }
    if (mine !== seq) return;
    users = users.filter((u) => u.id !== store.me.id && !exclude.has(u.id));
    for (const u of users) store.rememberUser(u);
    active = users.length ? 0 : -1;
    replaceChildren(results, users.length ? users.map((u, i) => option(u, i)) : h("li", { class: "people-empty" }, `No one matches “${q}”.`));
  }

  function option(user, index) {
    const selected = chosen.has(user.id);
    return h("li", {
      role: "option",
      class: ["person-option", index === active && "is-active"],
      "aria-selected": selected ? "true" : "false",
      dataset: { userId: user.id },
      onclick: () => pick(user),
    }, avatar(user.id, user.display_name || user.username, { size: "sm" }),
    h("span", { class: "person-name" }, user.display_name || user.username),
    h("span", { class: "person-handle" }, "@" + user.username),
    selected ? icon("check", { size: 16 }) : null);
  }

  function pick(user) {
    if (!multiple) {
      onPick?.(user);
      return;
    }
    if (chosen.has(user.id)) chosen.delete(user.id);
    else chosen.set(user.id, user);
    renderChips();
    input.value = "";
    replaceChildren(results);
    input.focus();
  }

  function renderChips() {
    replaceChildren(chips, [...chosen.values()].map((u) => h("span", { class: "chip" },
      u.display_name || u.username,
      h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${u.display_name || u.username}`, onclick: () => { chosen.delete(u.id); renderChips(); } }, icon("x", { size: 12 })))));
  }

  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  input.addEventListener("keydown", (event) => {
    const options = [...results.querySelectorAll(".person-option")];
    if (!options.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach((o, i) => o.classList.toggle("is-active", i === active));
      options[active].scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      options[active].click();
    }
  });
  const el = h("div", { class: "people-picker" }, multiple ? chips : null, input, results);
  return { el, selected: () => [...chosen.values()], focus: () => input.focus() };
}

/** "End-to-end encrypted" for a new conversation (docs/e2ee.md): never switched off later. */
function encryptedCheck(id) {
  const box = h("input", { type: "checkbox", id });
  const label = h("label", { class: "field-check", for: id }, box, " End-to-end encrypted: only the members' devices can read it (permanent)");
  return { box, label };
}

export function newDirectDialog() {
  const encrypted = encryptedCheck("direct-encrypted");
  const picker = peoplePicker({
    label: "Find a person",
    onPick: async (user) => {
      try {
        const conversation = await api.createDirect(user.id, { encrypted: encrypted.box.checked });
        store.upsertConversation(conversation);
        handle.close();
        navigate(conversationPath(conversation.id));
      } catch (error) {
        handle.setError(error.message);
      }
    },
  });
  const handle = openDialog({
    title: "New message",
    label: "New message",
    body: h("div", { class: "stack" }, h("p", { class: "dialog-text" }, "Start a direct conversation with someone on this server."), picker.el, encrypted.label),
  });
}

export function newGroupDialog() {
  const name = h("input", { class: "input", id: "group-name", maxlength: "100", placeholder: "e.g. Design team", autofocus: true, autocomplete: "off" });
  const picker = peoplePicker({ multiple: true, label: "Add members" });
  const open = h("input", { type: "checkbox", id: "group-public" });
  const encrypted = encryptedCheck("group-encrypted");
  openDialog({
    title: "New group",
    label: "New group",
    body: h("div", { class: "stack" },
      h("div", { class: "field" }, h("label", { for: "group-name", class: "field-label" }, "Group name"), name),
      h("div", { class: "field" }, h("span", { class: "field-label" }, "Members"), picker.el),
      h("label", { class: "field-check", for: "group-public" }, open, " Public: anyone can find it in the directory and join"),
      encrypted.label,
    ),
    actions: [
      { label: "Cancel" },
      {
        label: "Create group",
        primary: true,
        onClick: async () => {
          if (!name.value.trim()) {
            name.focus();
            throw new Error("Give the group a name.");
          }
          const conversation = await api.createGroup(name.value.trim(), picker.selected().map((u) => u.id), open.checked ? "public" : "private", { encrypted: encrypted.box.checked });
          store.upsertConversation(conversation);
          toast(`Created ${conversation.name}`);
          navigate(conversationPath(conversation.id));
        },
      },
    ],
  });
}
