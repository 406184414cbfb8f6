// Slash commands in the composer (DESIGN §6.6): typing "/" at the start of the box offers
// the commands of this conversation — built-ins (/me, /shrug, /mute, /invite) and custom
// ones — (arrows to choose, Enter or Tab to complete, Escape to dismiss). On send, a text
// that starts with a command runs it instead of sending (`isCommand`), and an answer meant
// only for the caller is shown as a note above the composer (`CommandNotes`).

import { api } from "../api.js";
import { h, iconButton } from "../dom.js";
import { CompletionList } from "./completion_list.js";

// "/name" then a space or the end: what the server runs (its own parse is the authority).
const COMMAND = /^\/[A-Za-z0-9][A-Za-z0-9_-]{0,31}(\s|$)/;
const TYPING_NAME = /^\/([A-Za-z0-9_-]{0,32})$/;
const MAX_NOTES = 5;

export function isCommand(text) {
  return COMMAND.test(text.trimStart());
}

export class SlashCompletion extends CompletionList {
  constructor(input, conversationId, { id = "slash-command-list" } = {}) {
    super(input, { id, label: "Commands", className: "slash-list" });
    this.conversationId = conversationId;
    this.commands = null; // loaded on the first "/"
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
    this.show(options, {}, { keepActive: true });
    return false;
  }

  /** Enter on a name typed in full runs it (the composer sends); Tab, or Enter on a part
   * of a name, completes it. */
  takes(event) {
    if (event.key === "Tab") return true;
    const chosen = this.state.options[this.state.active];
    return !event.shiftKey && this.input.value.trim().toLowerCase() !== `/${chosen.name}`;
  }

  choose(index) {
    const chosen = this.state.options[index];
    this.close();
    this.input.value = `/${chosen.name} `;
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }

  describe(command) {
    return {
      label: `/${command.name}: ${command.description || ""}`,
      content: [h("span", { class: "mention-name" }, `/${command.name}`),
        h("span", { class: "mention-handle" }, command.description || (command.builtin ? "" : "Custom command"))],
    };
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
