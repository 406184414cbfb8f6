// Popovers and menus anchored to a button: one open at a time, Escape or a click outside
// closes them, focus returns to the anchor, arrow keys move through menu items.

import { h, icon } from "../dom.js";

let current = null;

export function closePopover() {
  if (current) current.close();
}

/** Show `content` next to `anchor`. Returns {el, close}. */
export function openPopover(anchor, content, { className = "", label, onClose, role = "dialog", focus = true } = {}) {
  closePopover();
  const el = h("div", { class: ["popover", className], role, "aria-label": label, tabindex: "-1" }, content);
  document.body.append(el);
  place(el, anchor);
  anchor?.setAttribute("aria-expanded", "true");

  const onPointer = (event) => {
    if (!el.contains(event.target) && !anchor?.contains(event.target)) close(false);
  };
  const onKey = (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      event.preventDefault();
      close(true);
    }
  };
  const onResize = () => close(false);
  let closed = false;
  function close(returnFocus = false) {
    if (closed) return;
    closed = true;
    el.remove();
    anchor?.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", onPointer, true);
    document.removeEventListener("keydown", onKey, true);
    window.removeEventListener("resize", onResize);
    if (current?.el === el) current = null;
    if (returnFocus && anchor?.isConnected) anchor.focus();
    onClose?.();
  }
  document.addEventListener("pointerdown", onPointer, true);
  document.addEventListener("keydown", onKey, true);
  window.addEventListener("resize", onResize);
  current = { el, close };
  if (focus) (el.querySelector("[autofocus], input, button, [tabindex='0']") || el).focus();
  return current;
}

function place(el, anchor) {
  const margin = 8;
  const rect = anchor ? anchor.getBoundingClientRect() : { left: innerWidth / 2, right: innerWidth / 2, top: innerHeight / 2, bottom: innerHeight / 2 };
  const box = el.getBoundingClientRect();
  let top = rect.bottom + 4;
  if (top + box.height > innerHeight - margin && rect.top - box.height - 4 > margin) top = rect.top - box.height - 4;
  let left = rect.right - box.width;
  if (left < margin) left = Math.min(rect.left, innerWidth - box.width - margin);
  left = Math.max(margin, Math.min(left, innerWidth - box.width - margin));
  top = Math.max(margin, Math.min(top, innerHeight - box.height - margin));
  el.style.left = `${Math.round(left)}px`;
  el.style.top = `${Math.round(top)}px`;
}

/**
 * A menu of actions: items are {label, icon, onSelect, danger, disabled} or "separator".
 */
export function openMenu(anchor, items, { label = "Actions" } = {}) {
  const buttons = [];
  const list = h("div", { class: "menu" });
  for (const item of items) {
    if (!item) continue;
    if (item === "separator") {
      list.append(h("div", { class: "menu-separator", role: "separator" }));
      continue;
    }
    const button = h("button", {
      type: "button",
      role: "menuitem",
      class: ["menu-item", item.danger && "is-danger"],
      disabled: item.disabled,
      tabindex: "-1",
      onclick: () => {
        popover.close(true);
        item.onSelect();
      },
    }, item.icon ? icon(item.icon, { size: 16 }) : null, h("span", {}, item.label));
    buttons.push(button);
    list.append(button);
  }
  list.addEventListener("keydown", (event) => {
    const enabled = buttons.filter((b) => !b.disabled);
    const index = enabled.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      enabled[(index + step + enabled.length) % enabled.length]?.focus();
    } else if (event.key === "Home") {
      event.preventDefault();
      enabled[0]?.focus();
    } else if (event.key === "End") {
      event.preventDefault();
      enabled[enabled.length - 1]?.focus();
    } else if (event.key === "Tab") {
      popover.close(false);
    }
  });
  const popover = openPopover(anchor, list, { className: "popover-menu", label, role: "menu", focus: false });
  buttons.find((b) => !b.disabled)?.focus();
  return popover;
}
