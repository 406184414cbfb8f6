// A completion list under a text box — a listbox the box drives through
// aria-activedescendant: arrows move, Enter or Tab choose, Escape dismisses, a click picks.
// The :shortcode: emoji list (emoji_complete.js) and the slash-command list
// (slash_commands.js) are this with their own options.

import { h } from "../dom.js";

export class CompletionList {
  constructor(input, { id, label, className }) {
    this.input = input;
    this.id = id;
    this.state = null; // {options, active, ...what the subclass keeps}
    this.el = h("ul", { class: ["mention-list", className], id, role: "listbox", "aria-label": label, hidden: true });
  }

  get open() {
    return this.state !== null;
  }

  /** Show `options`; `extra` is kept in the state (where the text to replace starts...). */
  show(options, extra = {}, { keepActive = false } = {}) {
    const active = keepActive ? Math.min(this.state?.active || 0, options.length - 1) : 0;
    this.state = { ...extra, options, active };
    this._render();
  }

  /** Keys while the list is open; true when the key was handled. */
  keydown(event) {
    if (!this.state) return false;
    const count = this.state.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      this.state.active = (this.state.active + (event.key === "ArrowDown" ? 1 : -1) + count) % count;
      this._render();
      return true;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      if (!this.takes(event)) {
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

  /** Whether Enter/Tab picks the active option (else the list closes and the box has it). */
  takes() {
    return true;
  }

  choose() {
    throw new Error("a CompletionList chooses in its subclass");
  }

  /** The option's accessible name and its content. */
  describe() {
    throw new Error("a CompletionList describes its options in its subclass");
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
    this.el.replaceChildren(...options.map((option, i) => {
      const { label, content } = this.describe(option);
      return h("li", {
        role: "option",
        id: `${this.id}-${i}`,
        class: ["mention-option", i === active && "is-active"],
        "aria-selected": i === active ? "true" : "false",
        "aria-label": label,
        onmousedown: (event) => {
          event.preventDefault();
          this.choose(i);
        },
      }, ...content);
    }));
    this.el.hidden = false;
    this.input.setAttribute("aria-controls", this.id);
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.id}-${active}`);
  }
}
