// `:shortcode:` in a text box: typing ":" and two letters offers matching emoji (arrows to
// choose, Enter or Tab to insert, Escape to dismiss); typing a whole known ":code:" turns it
// into its emoji at once, as Slack does.

import { completeShortcode, loadEmoji, rememberEmoji } from "../emoji_data.js";
import { h } from "../dom.js";

const MIN_CHARS = 2;
// ":" at the start or after a space or an opening bracket, so "10:30" and URLs never trigger.
const OPEN_CODE = /(^|[\s([{])(:[a-z0-9_+-]{2,40})$/i;
const WHOLE_CODE = /(^|[\s([{]):([a-z0-9_+-]{1,40}):$/i;

export class EmojiCompletion {
  /** `input`: the textarea; the list is placed in the composer by the caller (`el`). */
  constructor(input, { id = "emoji-complete-list" } = {}) {
    this.input = input;
    this.id = id;
    this.state = null; // {start, options, active}
    this.table = null;
    this.el = h("ul", { class: "mention-list emoji-complete", id, role: "listbox", "aria-label": "Emoji", hidden: true });
  }

  get open() {
    return this.state !== null;
  }

  /** After each input event. Returns true when it changed the text (a whole code). */
  update() {
    const caret = this.input.selectionStart;
    if (caret !== this.input.selectionEnd) return this.close();
    const before = this.input.value.slice(0, caret);
    const whole = WHOLE_CODE.exec(before);
    if (whole && this.table) {
      const entry = this.table.byShortcode.get(whole[2].toLowerCase());
      if (entry) {
        this._insert(caret - whole[2].length - 2, caret, entry.emoji);
        return true;
      }
    }
    const match = OPEN_CODE.exec(before);
    if (!match || match[2].length - 1 < MIN_CHARS) return this.close();
    if (!this.table) {
      loadEmoji().then((table) => {
        this.table = table;
        if (this.input.isConnected) this.update();
      }).catch(() => {});
      return false;
    }
    const options = completeShortcode(this.table, match[2].slice(1));
    if (!options.length) return this.close();
    this.state = { start: caret - match[2].length, options, active: 0 };
    this._render();
    return false;
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
    const { start, options } = this.state;
    this._insert(start, this.input.selectionStart, options[index].entry.emoji);
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

  _insert(start, end, emoji) {
    rememberEmoji(emoji);
    this.close();
    this.input.setRangeText(emoji, start, end, "end");
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }

  _render() {
    const { options, active } = this.state;
    this.el.replaceChildren(...options.map(({ code, entry }, i) => h("li", {
      role: "option",
      id: `${this.id}-${i}`,
      class: ["mention-option", i === active && "is-active"],
      "aria-selected": i === active ? "true" : "false",
      "aria-label": `${entry.emoji} :${code}:`,
      onmousedown: (event) => {
        event.preventDefault();
        this.choose(i);
      },
    }, h("span", { class: "emoji-complete-glyph" }, entry.emoji), h("span", { class: "mention-name" }, `:${code}:`),
    h("span", { class: "mention-handle" }, entry.label))));
    this.el.hidden = false;
    this.input.setAttribute("aria-controls", this.id);
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.id}-${active}`);
  }
}
