// Files and media of a conversation: a section of the details panel (the latest pictures
// and files) and a dialog with all of them — a grid of pictures and videos, a list of
// documents and audio — loaded page by page from GET /conversations/{id}/attachments.
// Pictures open in the image viewer, going back through older ones as far as they go.

import { api } from "../api.js";
import { formatBytes, formatStamp, h, icon } from "../dom.js";
import { conversationPath } from "../router.js";
import { store } from "../store.js";
import { openDialog } from "./dialogs.js";
import { openImageViewer } from "./viewer.js";

const STRIP_IMAGES = 6;
const STRIP_FILES = 3;
const PAGE = 30;
const URL_PREFIX = "/api/v1/attachments/";

function safe(url) {
  return typeof url === "string" && url.startsWith(URL_PREFIX) ? url : null;
}

function thumbUrl(attachment) {
  const variants = attachment.variants || {};
  return safe((variants.thumb320 || variants.original || attachment).url);
}

/** Pages of one kind ("image" or "file"), newest first, and the viewer over the images. */
class GalleryFeed {
  constructor(conversationId, kind) {
    this.conversationId = conversationId;
    this.kind = kind;
    this.items = [];
    this.before = null;
    this.done = false;
  }

  async more(limit = PAGE) {
    if (this.done) return [];
    const page = await api.gallery(this.conversationId, { kind: this.kind, before: this.before, limit });
    const fresh = page.attachments.filter((a) => !this.items.some((known) => known.id === a.id));
    this.items.push(...fresh);
    this.before = page.next_before;
    this.done = !page.has_more;
    return fresh;
  }

  view(attachment) {
    const pictures = () => this.items.filter((a) => a.kind === "image").reverse();
    const list = pictures();
    openImageViewer(list, list.findIndex((a) => a.id === attachment.id), {
      loadOlder: async () => {
        const fresh = await this.more();
        return fresh.filter((a) => a.kind === "image").reverse();
      },
    });
  }
}

function thumbnail(feed, attachment) {
  const video = attachment.kind === "video";
  const label = video ? `Video ${attachment.name}` : `View ${attachment.name}`;
  if (video) {
    return h("a", { class: "gallery-thumb is-video", href: safe(attachment.url), target: "_blank", rel: "noopener", "aria-label": label, title: attachment.name },
      icon("play", { size: 22 }));
  }
  return h("button", { type: "button", class: "gallery-thumb", "aria-label": label, title: attachment.name, onclick: () => feed.view(attachment) },
    h("img", { src: thumbUrl(attachment), alt: "", loading: "lazy", decoding: "async" }));
}

function fileRow(attachment) {
  const url = safe(attachment.url);
  const who = store.displayName(attachment.sender_id);
  return h("li", { class: "gallery-file" },
    h("span", { class: "attachment-file-icon" }, icon(attachment.kind === "audio" ? "mic" : "file", { size: 16 })),
    h("span", { class: "gallery-file-text" },
      url ? h("a", { class: "gallery-file-name", href: url, download: attachment.name, "aria-label": `Download ${attachment.name}` }, attachment.name)
        : h("span", { class: "gallery-file-name" }, attachment.name),
      h("span", { class: "gallery-file-meta" }, `${formatBytes(attachment.size)} · ${who} · ${formatStamp(attachment.sent_at)}`)),
    h("a", { class: "icon-btn", href: conversationPath(attachment.conversation_id || "", attachment.message_id), "data-route": "", "aria-label": `Show ${attachment.name} in the conversation`, title: "Show in the conversation" }, icon("message", { size: 16 })));
}

/** The details panel's section: the latest pictures and files, and "Show all". */
export class GallerySection {
  constructor(conversationId) {
    this.id = conversationId;
    this.body = h("div", { class: "gallery-preview" }, h("p", { class: "muted" }, "Loading…"));
    this.el = h("section", { class: "details-section gallery-section", "aria-labelledby": `gallery-title-${conversationId}` },
      h("div", { class: "details-section-head" },
        h("h3", { class: "details-section-title", id: `gallery-title-${conversationId}` }, "Files and media"),
        h("button", { type: "button", class: "btn btn-small", onclick: () => openGallery(this.id) }, "Show all")),
      this.body);
    this.off = store.on(`timeline:${conversationId}`, (info) => {
      if ((info?.change === "inserted" || info?.change === "updated") && info.message?.attachments?.length !== undefined) this.schedule();
    });
    this.load();
  }

  destroy() {
    this.off();
    clearTimeout(this._timer);
  }

  schedule() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), 300);
  }

  async load() {
    const images = new GalleryFeed(this.id, "image");
    const files = new GalleryFeed(this.id, "file");
    try {
      await Promise.all([images.more(STRIP_IMAGES), files.more(STRIP_FILES)]);
    } catch {
      this.body.replaceChildren(h("p", { class: "muted" }, "Couldn't load the files."));
      return;
    }
    for (const item of files.items) item.conversation_id = this.id;
    if (!images.items.length && !files.items.length) {
      this.body.replaceChildren(h("p", { class: "muted" }, "Pictures and files sent here will show up here."));
      return;
    }
    const parts = [];
    if (images.items.length) parts.push(h("div", { class: "gallery-strip" }, images.items.map((a) => thumbnail(images, a))));
    if (files.items.length) parts.push(h("ul", { class: "gallery-files" }, files.items.map(fileRow)));
    this.body.replaceChildren(...parts);
  }
}

/** The dialog with everything: Media and Files tabs, more on demand. */
export function openGallery(conversationId, initial = "image") {
  const panels = {};
  const tabs = {};
  const feeds = { image: new GalleryFeed(conversationId, "image"), file: new GalleryFeed(conversationId, "file") };
  const tabList = h("div", { class: "gallery-tabs", role: "tablist", "aria-label": "Files and media" });
  const body = h("div", { class: "gallery-dialog-body" }, tabList);
  for (const [kind, title] of [["image", "Media"], ["file", "Files"]]) {
    const content = kind === "image" ? h("div", { class: "gallery-grid" }) : h("ul", { class: "gallery-files" });
    const more = h("button", { type: "button", class: "btn btn-small gallery-more", hidden: true, onclick: () => load(kind) }, "Load more");
    const status = h("p", { class: "muted gallery-status", role: "status" });
    panels[kind] = { el: h("div", { class: "gallery-panel", role: "tabpanel", id: `gallery-${kind}`, "aria-label": title, hidden: true }, content, status, more), content, more, status, loaded: false };
    tabs[kind] = h("button", { type: "button", role: "tab", class: "gallery-tab", id: `gallery-tab-${kind}`, "aria-controls": `gallery-${kind}`, "aria-selected": "false", onclick: () => select(kind) }, title);
    tabList.append(tabs[kind]);
    body.append(panels[kind].el);
  }
  tabList.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const next = tabs.image.getAttribute("aria-selected") === "true" ? "file" : "image";
    select(next);
    tabs[next].focus();
  });

  async function load(kind) {
    const panel = panels[kind];
    const feed = feeds[kind];
    panel.more.hidden = true;
    panel.status.textContent = "Loading…";
    try {
      const fresh = await feed.more();
      for (const item of fresh) item.conversation_id = conversationId;
      panel.content.append(...fresh.map((a) => (kind === "image" ? thumbnail(feed, a) : fileRow(a))));
      panel.status.textContent = feed.items.length ? "" : kind === "image" ? "No pictures or videos yet." : "No files yet.";
      panel.more.hidden = feed.done;
    } catch {
      panel.status.textContent = "Couldn't load. Try again.";
      panel.more.hidden = false;
    }
  }

  function select(kind) {
    for (const [name, tab] of Object.entries(tabs)) {
      const on = name === kind;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      panels[name].el.hidden = !on;
    }
    if (!panels[kind].loaded) {
      panels[kind].loaded = true;
      load(kind);
    }
  }

  const handle = openDialog({ title: "Files and media", label: "Files and media", body, className: "gallery-dialog" });
  // Following a "show in the conversation" link closes the dialog on the way.
  body.addEventListener("click", (event) => {
    if (event.target.closest?.("a[data-route]")) handle.close();
  });
  select(initial);
  tabs[initial].focus();
  return handle;
}
