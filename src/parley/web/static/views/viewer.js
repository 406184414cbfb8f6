// The image viewer: one picture at full size over a dark backdrop, previous / next through
// the pictures of the conversation (arrow keys, the side buttons), download, and Escape or
// the close button to go back. A native <dialog>: focus stays inside while it is open and
// returns to the thumbnail afterwards.
//
// items: [{id, name, url, width, height, sender_id, sent_at}] in the order they were sent
// (oldest first); `index` is the one to show. `loadOlder()` (optional) resolves to more
// items to put before the first when the reader goes back past it.

import { formatFull, h, icon, iconButton } from "../dom.js";
import { store } from "../store.js";

const URL_PREFIX = "/api/v1/attachments/";

/** Only server-made attachment paths ever become a src or href. */
function safe(url) {
  // blob: URLs of this page: images decrypted here (e2ee/media.js).
  return typeof url === "string" && (url.startsWith(URL_PREFIX) || url.startsWith(`blob:${location.origin}/`)) ? url : null;
}

export function openImageViewer(items, index, { loadOlder } = {}) {
  let list = items.filter((item) => safe(item.url));
  let current = Math.max(0, Math.min(list.length - 1, index));
  let exhausted = !loadOlder;
  const opener = document.activeElement;

  const image = h("img", { class: "viewer-img", alt: "" });
  const title = h("h2", { class: "viewer-title" });
  const meta = h("p", { class: "viewer-meta" });
  const counter = h("span", { class: "viewer-counter", "aria-live": "polite" });
  const download = h("a", { class: "icon-btn viewer-action", "aria-label": "Download", title: "Download" }, icon("download"));
  const previous = h("button", { type: "button", class: "viewer-nav viewer-prev", "aria-label": "Previous image", title: "Previous (←)", onclick: () => step(-1) }, icon("back", { size: 22 }));
  const next = h("button", { type: "button", class: "viewer-nav viewer-next", "aria-label": "Next image", title: "Next (→)", onclick: () => step(1) }, icon("back", { size: 22 }));
  const stage = h("div", { class: "viewer-stage" }, previous, h("figure", { class: "viewer-figure" }, image), next);
  const dialog = h("dialog", { class: "viewer", "aria-label": "Image viewer" },
    h("header", { class: "viewer-head" },
      h("div", { class: "viewer-heading" }, title, meta),
      counter,
      download,
      iconButton("x", "Close (Escape)", () => close(), { class: "viewer-action" })),
    stage);

  function show() {
    const item = list[current];
    image.src = safe(item.url);
    image.alt = item.name || "Image";
    if (item.width && item.height) {
      image.width = item.width;
      image.height = item.height;
    } else {
      image.removeAttribute("width");
      image.removeAttribute("height");
    }
    title.textContent = item.name || "Image";
    const who = item.sender_id ? store.displayName(item.sender_id) : "";
    meta.textContent = [who, item.sent_at ? formatFull(item.sent_at) : ""].filter(Boolean).join(" · ");
    counter.textContent = list.length > 1 ? `${current + 1} of ${list.length}${exhausted ? "" : "+"}` : "";
    download.href = safe(item.url);
    download.setAttribute("download", item.name || "image");
    previous.disabled = current === 0 && exhausted;
    next.disabled = current === list.length - 1;
    previous.hidden = next.hidden = list.length < 2 && exhausted;
    // The neighbours load while this one is looked at.
    for (const near of [list[current - 1], list[current + 1]]) {
      if (near && safe(near.url)) new Image().src = safe(near.url);
    }
  }

  async function step(direction) {
    if (direction < 0 && current === 0 && !exhausted) {
      const older = (await loadOlder().catch(() => [])).filter((item) => safe(item.url) && !list.some((known) => known.id === item.id));
      if (!older.length) exhausted = true;
      list = [...older, ...list];
      current += older.length;
    }
    const target = current + direction;
    if (target < 0 || target >= list.length) {
      show();
      return;
    }
    current = target;
    show();
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") {
      event.preventDefault();
      step(-1);
    } else if (event.key === "ArrowRight") {
      event.preventDefault();
      step(1);
    }
  });
  // A click on the backdrop (outside the picture and the controls) closes, as in most viewers.
  stage.addEventListener("click", (event) => {
    if (event.target === stage) close();
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  });
  document.body.append(dialog);
  show();
  dialog.showModal();
  dialog.querySelector(".viewer-action[aria-label^='Close']")?.focus();
  return { dialog, close };
}
