// `:shortcode:` in a text box: typing ":" and two letters offers matching emoji (arrows to
// choose, Enter or Tab to insert, Escape to dismiss); typing a whole known ":code:" turns it
// into its emoji at once, as Slack does.

import { completeShortcode, loadEmoji, rememberEmoji } from "../emoji_data.js";
import { h } from "../dom.js";
import { CompletionList } from "./completion_list.js";

const MIN_CHARS = 2;
// ":" at the start or after a space or an opening bracket, so "10:30" and URLs never trigger.
const OPEN_CODE = /(^|[\s([{])(:[a-z0-9_+-]{2,40})$/i;
const WHOLE_CODE = /(^|[\s([{]):([a-z0-9_+-]{1,40}):$/i;

export class EmojiCompletion extends CompletionList {
  /** `input`: the textarea; the list is placed in the composer by the caller (`el`). */
  constructor(input, { id = "emoji-complete-list" } = {}) {
    super(input, { id, label: "Emoji", className: "emoji-complete" });
    this.table = null;
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
    this.show(options, { start: caret - match[2].length });
    return false;
  }

  choose(index) {
    const { start, options } = this.state;
    this._insert(start, this.input.selectionStart, options[index].entry.emoji);
  }

  describe({ code, entry }) {
    return {
      label: `${entry.emoji} :${code}:`,
      content: [h("span", { class: "emoji-complete-glyph" }, entry.emoji), h("span", { class: "mention-name" }, `:${code}:`),
        h("span", { class: "mention-handle" }, entry.label)],
    };
  }

  _insert(start, end, emoji) {
    rememberEmoji(emoji);
    this.close();
    this.input.setRangeText(emoji, start, end, "end");
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }
}
