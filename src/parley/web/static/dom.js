// Small DOM helpers: element building (text nodes only, never HTML strings), icons, avatars, time formats.
//
// Every piece of text goes through textContent / createTextNode. `h()` refuses inline event
// handler attributes and `style` so the CSP (no inline scripts or styles) always holds.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("button", {class: "x", onclick: fn, "aria-label": "Send"}, child, "text", [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "style" || /^on[a-z]+:?$/i.test(name) && typeof value === "string") {
      throw new Error(`h(): refusing inline ${name}`);
    }
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (name === "text") {
      el.textContent = value;
    } else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = v;
    } else if (name === "value" || name === "checked" || name === "disabled" || name === "selected") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replaceChildren(el, ...children) {
  clear(el);
  return append(el, children);
}

// --- icons (Lucide-style strokes, 24x24 viewBox), drawn with createElementNS

const ICONS = {
  plus: ["M12 5v14", "M5 12h14"],
  search: ["M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z", "M21 21l-4.3-4.3"],
  send: ["M22 2L11 13", "M22 2l-7 20-4-9-9-4 20-7z"],
  smile: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M8 14s1.5 2 4 2 4-2 4-2", "M9 9h.01", "M15 9h.01"],
  reply: ["M9 17l-5-5 5-5", "M20 18v-2a4 4 0 0 0-4-4H4"],
  more: ["M12 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2z", "M19 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2z", "M5 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2z"],
  edit: ["M12 20h9", "M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z"],
  trash: ["M3 6h18", "M8 6V4h8v2", "M19 6l-1 14H6L5 6", "M10 11v6", "M14 11v6"],
  link: ["M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7", "M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7"],
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  check: ["M20 6L9 17l-5-5"],
  checks: ["M18 6L7 17l-5-5", "M22 10l-7.5 7.5L13 16"],
  clock: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M12 6v6l4 2"],
  alert: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M12 8v4", "M12 16h.01"],
  x: ["M18 6L6 18", "M6 6l12 12"],
  down: ["M12 5v14", "M19 12l-7 7-7-7"],
  back: ["M19 12H5", "M12 19l-7-7 7-7"],
  users: ["M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2", "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M23 21v-2a4 4 0 0 0-3-3.9", "M16 3.1a4 4 0 0 1 0 7.8"],
  userPlus: ["M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2", "M8.5 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M20 8v6", "M23 11h-6"],
  message: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"],
  settings: ["M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"],
  logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"],
  bell: ["M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9", "M13.7 21a2 2 0 0 1-3.4 0"],
  bellOff: ["M13.7 21a2 2 0 0 1-3.4 0", "M18.6 13A17.9 17.9 0 0 1 18 8", "M6.3 6.3A6 6 0 0 0 6 8c0 7-3 9-3 9h14", "M18 8a6 6 0 0 0-9.3-5", "M1 1l22 22"],
  hash: ["M4 9h16", "M4 15h16", "M10 3L8 21", "M16 3l-2 18"],
  bold: ["M6 4h8a4 4 0 0 1 0 8H6z", "M6 12h9a4 4 0 0 1 0 8H6z"],
  italic: ["M19 4h-9", "M14 20H5", "M15 4L9 20"],
  strike: ["M16 4H9a3 3 0 0 0-2.8 4", "M14 12a4 4 0 0 1 0 8H6", "M4 12h16"],
  code: ["M16 18l6-6-6-6", "M8 6l-6 6 6 6"],
  shield: ["M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z"],
  lock: ["M5 11h14v10H5z", "M8 11V7a4 4 0 0 1 8 0v4"],
  menu: ["M3 12h18", "M3 6h18", "M3 18h18"],
  refresh: ["M23 4v6h-6", "M1 20v-6h6", "M3.5 9a9 9 0 0 1 14.9-3.4L23 10", "M1 14l4.6 4.4A9 9 0 0 0 20.5 15"],
  wifiOff: ["M1 1l22 22", "M16.7 11.1A11 11 0 0 1 19 12.6", "M5 12.6a11 11 0 0 1 5.2-2.5", "M10.7 5A16 16 0 0 1 22.6 9", "M1.4 9a16 16 0 0 1 4.4-2.8", "M8.5 16.1a6 6 0 0 1 7 0", "M12 20h.01"],
  file: ["M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z", "M14 2v6h6"],
  paperclip: ["M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"],
  download: ["M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4", "M7 10l5 5 5-5", "M12 15V3"],
  mic: ["M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3z", "M19 10v2a7 7 0 0 1-14 0v-2", "M12 19v3"],
  play: ["M7 4l13 8-13 8z"],
  pause: ["M7 4h3v16H7z", "M14 4h3v16h-3z"],
  pin: ["M12 17v5", "M9 10.8V4h6v6.8l3 3.2v2H6v-2z"],
  forward: ["M15 17l5-5-5-5", "M4 18v-2a4 4 0 0 1 4-4h12"],
  thread: ["M21 12a8 8 0 0 1-11.6 7.1L3 21l1.9-6.4A8 8 0 1 1 21 12z", "M8 10h8", "M8 14h5"],
  globe: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M2 12h20", "M12 2a15 15 0 0 1 0 20a15 15 0 0 1 0-20z"],
  image: ["M3 5h18v14H3z", "M8.5 10a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z", "M21 15l-5-5L5 19"],
  flag: ["M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1z", "M4 22v-7"],
};

export function icon(name, { size = 18, label } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** An icon-only button with an accessible name and a tooltip. */
export function iconButton(name, label, onclick, extra = {}) {
  return h("button", { type: "button", class: ["icon-btn", extra.class], "aria-label": label, title: label, onclick, ...extra.attrs }, icon(name));
}

// --- avatars

export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : [words[0] || "?"];
  return letters.map((w) => Array.from(w)[0] || "").join("").toUpperCase().slice(0, 2) || "?";
}

export function hueClass(id) {
  let hash = 0;
  for (const ch of String(id || "")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${hash % 12}`;
}

// Where a user's profile picture is: set once by the app (from the store), so every
// avatar() shows the picture when there is one, initials otherwise.
let pictureOf = () => null;

export function setAvatarSource(lookup) {
  pictureOf = lookup;
}

export function avatar(id, name, { size = "md", presence } = {}) {
  const picture = pictureOf(id);
  const url = picture ? (size === "lg" ? picture.large : picture.small) : null;
  const el = h("span", { class: ["avatar", `avatar-${size}`, hueClass(id), url && "has-picture"], "aria-hidden": "true" },
    url ? h("img", { class: "avatar-img", src: url, alt: "", loading: "lazy", decoding: "async" }) : initials(name));
  // Online and away get a dot; offline is the absence of one (as in Slack).
  if (presence === "online" || presence === "away") {
    el.append(h("span", { class: ["presence-dot", `presence-${presence}`], title: presence === "online" ? "Online" : "Away" }));
  }
  return el;
}

/** A group's picture (`picture`: its `avatar` URLs) when it has one, a hash sign otherwise. */
export function groupAvatar(id, name, { size = "md", picture = null } = {}) {
  const url = picture ? (size === "lg" ? picture.large : picture.small) : null;
  return h("span", { class: ["avatar", "avatar-group", `avatar-${size}`, hueClass(id), url && "has-picture"], "aria-hidden": "true" },
    url ? h("img", { class: "avatar-img", src: url, alt: "", loading: "lazy", decoding: "async" }) : icon("hash", { size: size === "sm" ? 14 : 18 }));
}

// --- time

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

export function formatTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function formatFull(iso) {
  return iso ? fullFormat.format(new Date(iso)) : "";
}

export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function formatDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return "Today";
  if (dayKey(d) === dayKey(yesterday)) return "Yesterday";
  return d.getFullYear() === today.getFullYear() ? dayFormat.format(d) : dayYearFormat.format(d);
}

/** Sidebar stamp: time today, weekday this week, date otherwise. */
export function formatStamp(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  if (dayKey(d) === dayKey(now)) return timeFormat.format(d);
  if (now - d < 6 * 86400000) return d.toLocaleDateString(undefined, { weekday: "short" });
  return shortDate.format(d);
}

export function formatAgo(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.now() - new Date(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatStamp(iso);
}

export function announce(text) {
  const region = document.getElementById("live-region");
  if (!region) return;
  region.textContent = "";
  // A separate task, so screen readers notice the change even for a repeated message.
  setTimeout(() => { region.textContent = text; }, 30);
}

let toastTimer = null;
export function toast(text, { error = false } = {}) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.className = error ? "toast toast-error is-visible" : "toast is-visible";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = "toast"; }, 4000);
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to clipboard");
  } catch {
    toast("Could not copy: your browser blocked the clipboard", { error: true });
  }
}
