// The emoji picker, for reactions and for the composer: a search box, recently used first,
// then every group of the Unicode set (tabs jump to a group), a preview of the emoji under
// the pointer or focus with its :shortcode:. Arrow keys move through the grid, Enter picks,
// Escape closes (the popover's), typing goes to the search box.

import { loadEmoji, recentRow, rememberEmoji, searchEmoji } from "../emoji_data.js";
import { h } from "../dom.js";
import { openPopover } from "./popover.js";

const COLUMNS = 8;
// One emoji per tab, standing for its group (the same order as the data's groups).
const GROUP_ICONS = ["😀", "👋", "🐻", "🍔", "✈️", "⚽", "💡", "🔣", "🏁"];

/**
 * Open the picker next to `anchor`. `onPick(emoji)` gets the choice; `label` names the
 * dialog ("Choose a reaction", "Insert an emoji"). Returns the popover handle.
 */
export function openEmojiPicker(anchor, onPick, { label = "Choose an emoji", actionLabel = "Pick" } = {}) {
  const search = h("input", {
    type: "search",
    class: "input emoji-search",
    placeholder: "Search emoji",
    "aria-label": "Search emoji",
    autocomplete: "off",
    spellcheck: "false",
  });
  const tabs = h("div", { class: "emoji-tabs", role: "toolbar", "aria-label": "Emoji groups" });
  const scroller = h("div", { class: "emoji-scroll" });
  const preview = h("div", { class: "emoji-preview", "aria-hidden": "true" });
  const status = h("p", { class: "emoji-status", role: "status" });
  const body = h("div", { class: "emoji-picker" }, search, tabs, scroller, status, preview);
  let buttons = [];
  let table = null;

  const pick = (emoji) => {
    rememberEmoji(emoji);
    popover.close(true);
    onPick(emoji);
  };

  const button = (emoji, entry) => {
    const name = entry ? entry.label : emoji;
    const el = h("button", {
      type: "button",
      class: "emoji-btn",
      "aria-label": `${actionLabel} ${emoji} ${entry ? entry.label : ""}`.trim(),
      title: entry?.shortcodes[0] ? `${name} :${entry.shortcodes[0]}:` : name,
      tabindex: "-1",
      dataset: { emoji },
      onclick: () => pick(emoji),
      onmouseenter: () => showPreview(emoji, entry),
      onfocus: () => showPreview(emoji, entry),
    }, emoji);
    buttons.push(el);
    return el;
  };

  function showPreview(emoji, entry) {
    preview.replaceChildren(h("span", { class: "emoji-preview-glyph" }, emoji),
      h("span", { class: "emoji-preview-text" },
        h("span", { class: "emoji-preview-name" }, entry?.label || ""),
        entry?.shortcodes.length ? h("span", { class: "emoji-preview-code" }, entry.shortcodes.map((c) => `:${c}:`).join(" ")) : null));
  }

  function section(title, entries, id) {
    return h("section", { class: "emoji-section", id, "aria-label": title },
      h("h3", { class: "emoji-group-title" }, title),
      h("div", { class: "emoji-grid", role: "group", "aria-label": title },
        entries.map(([emoji, entry]) => button(emoji, entry))));
  }

  function renderAll() {
    buttons = [];
    const recent = recentRow().map((e) => [e, table?.byEmoji.get(e)]);
    const sections = [section("Recently used", recent, "emoji-group-recent")];
    if (table) {
      table.groups.forEach((name, index) => {
        sections.push(section(name, table.list.filter((e) => e.group === index).map((e) => [e.emoji, e]), `emoji-group-${index}`));
      });
    }
    scroller.replaceChildren(...sections);
    status.textContent = table ? "" : "Loading all emoji…";
    focusable(0);
    if (recent.length) showPreview(recent[0][0], recent[0][1]);
  }

  function renderSearch(query) {
    buttons = [];
    const found = searchEmoji(table, query);
    scroller.replaceChildren(found.length
      ? section(`Results for “${query}”`, found.map((e) => [e.emoji, e]), "emoji-group-results")
      : h("p", { class: "emoji-empty" }, `No emoji match “${query}”.`));
    status.textContent = found.length ? `${found.length} found` : "";
    focusable(0);
    if (found.length) showPreview(found[0].emoji, found[0]);
  }

  function focusable(index) {
    buttons.forEach((b, i) => { b.tabIndex = i === index ? 0 : -1; });
  }

  function renderTabs() {
    const entries = [["🕘", "Recently used", "emoji-group-recent"], ...(table?.groups || []).map((name, i) => [GROUP_ICONS[i] || "•", name, `emoji-group-${i}`])];
    tabs.replaceChildren(...entries.map(([glyph, name, id]) => h("button", {
      type: "button",
      class: "emoji-tab",
      "aria-label": name,
      title: name,
      onclick: () => {
        search.value = "";
        if (!scroller.querySelector(`#${id}`)) renderAll();
        const target = scroller.querySelector(`#${id}`);
        if (target) scroller.scrollTop = target.offsetTop - scroller.offsetTop;
        target?.querySelector(".emoji-btn")?.focus();
      },
    }, glyph)));
  }

  search.addEventListener("input", () => {
    const query = search.value.trim();
    if (!table) return;
    if (query) renderSearch(query);
    else renderAll();
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && buttons.length) {
      event.preventDefault();
      buttons[0].focus();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (search.value.trim() && buttons.length) buttons[0].click();
    }
  });
  scroller.addEventListener("keydown", (event) => {
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS };
    if (event.key in moves) {
      event.preventDefault();
      const next = index + moves[event.key];
      if (next < 0) {
        search.focus();
        return;
      }
      const target = buttons[Math.min(buttons.length - 1, next)];
      focusable(buttons.indexOf(target));
      target.focus();
      target.scrollIntoView({ block: "nearest" });
    } else if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
      search.focus(); // typing searches, wherever the focus is in the grid
    }
  });

  renderAll();
  renderTabs();
  const popover = openPopover(anchor, body, { className: "popover-emoji", label, focus: false });
  search.focus();
  loadEmoji().then((loaded) => {
    table = loaded;
    if (popover.el.isConnected) {
      renderTabs();
      if (search.value.trim()) renderSearch(search.value.trim());
      else renderAll();
    }
  }).catch(() => {
    status.textContent = "Couldn't load the emoji list. The recently used ones still work.";
  });
  return popover;
}
