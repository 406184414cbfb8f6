// A small reaction picker: frequently used emoji first, arrow keys to move, Enter to pick.

import { h } from "../dom.js";
import { openPopover } from "./popover.js";

const GROUPS = [
  ["Frequent", ["👍", "❤️", "😂", "🎉", "👀", "🙏", "🔥", "✅"]],
  ["Smileys", ["😀", "😄", "😊", "😉", "😍", "🤔", "😅", "😢", "😮", "😡", "🥳", "😴"]],
  ["Gestures", ["👏", "🙌", "👋", "💪", "👌", "✌️", "🤝", "👎"]],
  ["Things", ["🚀", "💡", "⭐", "💯", "☕", "🍕", "🐛", "📌", "❓", "❗", "⚠️", "🎯"]],
];
const FREQUENT_KEY = "parley.emoji.frequent";

function frequent() {
  try {
    const saved = JSON.parse(localStorage.getItem(FREQUENT_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((e) => typeof e === "string").slice(0, 8) : [];
  } catch {
    return [];
  }
}

function remember(emoji) {
  try {
    const list = [emoji, ...frequent().filter((e) => e !== emoji)].slice(0, 8);
    localStorage.setItem(FREQUENT_KEY, JSON.stringify(list));
  } catch {
    /* not remembered */
  }
}

export function openEmojiPicker(anchor, onPick) {
  const recent = frequent();
  const groups = GROUPS.map(([name, list]) => (name === "Frequent" && recent.length ? [name, [...new Set([...recent, ...list])].slice(0, 8)] : [name, list]));
  const buttons = [];
  const body = h("div", { class: "emoji-picker" });
  for (const [name, list] of groups) {
    const grid = h("div", { class: "emoji-grid", role: "group", "aria-label": name });
    for (const emoji of list) {
      const button = h("button", {
        type: "button",
        class: "emoji-btn",
        "aria-label": `React with ${emoji}`,
        tabindex: buttons.length ? "-1" : "0",
        onclick: () => {
          remember(emoji);
          popover.close(true);
          onPick(emoji);
        },
      }, emoji);
      buttons.push(button);
      grid.append(button);
    }
    body.append(h("div", { class: "emoji-group-title" }, name), grid);
  }
  body.addEventListener("keydown", (event) => {
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const columns = 8;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = Math.max(0, Math.min(buttons.length - 1, index + moves[event.key]));
    buttons[index].tabIndex = -1;
    buttons[next].tabIndex = 0;
    buttons[next].focus();
  });
  const popover = openPopover(anchor, body, { className: "popover-emoji", label: "Choose a reaction", focus: false });
  buttons[0]?.focus();
  return popover;
}
