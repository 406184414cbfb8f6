// Slash commands in the composer (DESIGN §6.6): typing "/" at the start of the box offers
// the commands of this conversation — built-ins (/me, /shrug, /mute, /invite) and custom
// ones — (arrows to choose, Enter or Tab to complete, Escape to dismiss). On send, a text
// that starts with a command runs it instead of sending (`isCommand`), and an answer meant
// only for the caller is shown as a note above the composer (`CommandNotes`).

import { api } from "../api.js";
import { h, iconButton } from "../dom.js";

// "/name" then a space or the end: what the server runs (its own parse is the authority).
const COMMAND = /^\/[A-Za-z0-9][A-Za-z0-9_-]{0,31}(\s|$)/;
const TYPING_NAME = /^\/([A-Za-z0-9_-]{0,32})$/;
const MAX_NOTES = 5;

export function isCommand(text) {
  return COMMAND.test(text.trimStart());
}

export class SlashCompletion {
  constructor(input, conversationId, { id = "slash-command-list" } = {}) {
    this.input = input;
    this.conversationId = conversationId;
    this.id = id;
    this.state = null; // {options, active}
    this.commands = null; // loaded on the first "/"
    this.el = h("ul", { class: "mention-list slash-list", id, role: "listbox", "aria-label": "Commands", hidden: true });
  }

  get open() {
    return this.state !== null;
  }

  update() {
    const caret = this.input.selectionStart;
    const match = caret === this.input.selectionEnd ? TYPING_NAME.exec(this.input.value.slice(0, caret)) : null;
    if (!match || this.input.value.length !== caret) return this.close();
    if (this.commands === null) {
      this.commands = [];
      api.commands(this.conversationId).then((commands) => {
        this.commands = commands;
        if (this.input.isConnected) this.update();
      }).catch(() => {
        this.commands = null;
      });
      return this.close();
    }
    const typed = match[1].toLowerCase();
    const options = this.commands.filter((c) => c.name.startsWith(typed));
    if (!options.length) return this.close();
    this.state = { options, active: Math.min(this.state?.active || 0, options.length - 1) };
    this._render();
    return false;
  }

  keydown(event) {
    if (!this.state) return false;
    const count = this.state.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      this.state.active = (this.state.active + (event.key === "ArrowDown" ? 1 : -1) + count) % count;
      this._render();
      return true;
    }
    if (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey)) {
      const chosen = this.state.options[this.state.active];
      // Enter on a name typed in full runs it (the composer sends); otherwise it completes.
      if (event.key === "Enter" && this.input.value.trim().toLowerCase() === `/${chosen.name}`) {
        this.close();
        return false;
      }
      event.preventDefault();
      this.choose(this.state.active);
      return true;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
      return true;
    }
    return false;
  }

  choose(index) {
    const chosen = this.state.options[index];
    this.close();
    this.input.value = `/${chosen.name} `;
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }

  close() {
    if (this.state === null && this.el.hidden) return false;
    this.state = null;
    this.el.hidden = true;
    this.el.replaceChildren();
    if (this.input.getAttribute("aria-controls") === this.id) {
      this.input.setAttribute("aria-expanded", "false");
      this.input.removeAttribute("aria-activedescendant");
    }
    return false;
  }

  _render() {
    const { options, active } = this.state;
    this.el.replaceChildren(...options.map((command, i) => h("li", {
      role: "option",
      id: `${this.id}-${i}`,
      class: ["mention-option", i === active && "is-active"],
      "aria-selected": i === active ? "true" : "false",
      "aria-label": `/${command.name}: ${command.description || ""}`,
      onmousedown: (event) => {
        event.preventDefault();
        this.choose(i);
      },
    }, h("span", { class: "mention-name" }, `/${command.name}`),
    h("span", { class: "mention-handle" }, command.description || (command.builtin ? "" : "Custom command")))));
    this.el.hidden = false;
    this.input.setAttribute("aria-controls", this.id);
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.id}-${active}`);
  }
}

/** Answers only the caller sees, above the composer; each shown once (by its id), whether
 * it came as the REST answer or as the command.response event. */
export class CommandNotes {
  constructor() {
    this.shown = new Set();
    this.el = h("div", { class: "command-notes", "aria-live": "polite" });
  }

  show({ id, text, error, command }) {
    if (id && this.shown.has(id)) return;
    if (id) this.shown.add(id);
    if (!text) return;
    const note = h("div", { class: ["command-note", error && "is-error"], role: "status" },
      h("span", { class: "command-note-label" }, command ? `/${command} · Only visible to you` : "Only visible to you"),
      h("span", { class: "command-note-text" }, text),
      iconButton("x", "Dismiss", () => note.remove()));
    this.el.append(note);
    while (this.el.children.length > MAX_NOTES) this.el.firstElementChild.remove();
  }
}
