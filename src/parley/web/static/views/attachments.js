// Attachments in a message: image thumbnails (opening the image viewer), voice and other
// audio in Parley's player, video players, and download chips for documents. URLs come
// signed from the server and expire; a broken one is refreshed once through
// GET /attachments/{id}.

import { api } from "../api.js";
import { formatBytes, h, icon } from "../dom.js";
import { openImageViewer } from "./viewer.js";
import { renderVoicePlayer } from "./voice.js";

const URL_PREFIX = "/api/v1/attachments/";
const MAX_WIDTH = 360;
const MAX_HEIGHT = 280;

/** Only server-made attachment paths (or local blob: previews) ever become src / href. */
function safe(url) {
  return typeof url === "string" && (url.startsWith(URL_PREFIX) || url.startsWith("blob:")) ? url : null;
}

function fit(width, height) {
  if (!width || !height) return {};
  const scale = Math.min(1, MAX_WIDTH / width, MAX_HEIGHT / height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

function thumbnail(attachment) {
  const variants = attachment.variants || {};
  return variants.thumb320 || variants.thumb1280 || variants.original || { url: attachment.url, width: attachment.width, height: attachment.height };
}

async function refresh(element, attachment, pick) {
  if (element.dataset.refreshed) return;
  element.dataset.refreshed = "1";
  try {
    const fresh = await api.attachment(attachment.id);
    const url = safe(pick(fresh));
    if (url) element.src = url;
  } catch {
    /* gone, or no longer a member: the broken image stays */
  }
}

/** The image viewer over every picture of the timeline this one is in, older ones from
 * the gallery API when the reader goes back past the first. */
function openFromTimeline(link, conversationId) {
  const links = [...(link.closest(".timeline-list") || document).querySelectorAll(".attachment-image[data-attachment-id]")];
  const items = links.map((el) => ({
    id: el.dataset.attachmentId,
    name: el.dataset.name,
    url: el.getAttribute("href"),
    width: Number(el.dataset.width) || undefined,
    height: Number(el.dataset.height) || undefined,
    sender_id: el.dataset.sender,
    sent_at: el.dataset.sent,
  }));
  const loadOlder = conversationId ? async () => {
    const page = await api.gallery(conversationId, { kind: "image", before: items[0]?.id, limit: 30 });
    return page.attachments.filter((a) => a.kind === "image").reverse();
  } : undefined;
  openImageViewer(items, links.indexOf(link), { loadOlder });
}

export function renderAttachments(attachments, message = {}) {
  const box = h("div", { class: "msg-attachments" });
  for (const attachment of attachments) {
    const name = attachment.name || "file";
    const original = safe(attachment.url);
    if (attachment.kind === "image" && original) {
      const variant = thumbnail(attachment);
      const img = h("img", {
        class: "attachment-img",
        src: safe(variant.url) || original,
        alt: name,
        loading: "lazy",
        decoding: "async",
        ...fit(variant.width || attachment.width, variant.height || attachment.height),
      });
      img.addEventListener("error", () => refresh(img, attachment, (a) => thumbnail(a).url));
      const link = h("a", {
        class: "attachment-image",
        href: original,
        target: "_blank",
        rel: "noopener",
        "aria-label": `Open image ${name}`,
        dataset: { attachmentId: attachment.id, name, width: attachment.width, height: attachment.height, sender: message.sender_id, sent: message.created_at },
        onclick: (event) => {
          if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
          event.preventDefault(); // a plain click views it here; a modified one opens a tab
          openFromTimeline(link, message.conversation_id);
        },
      }, img);
      box.append(link);
    } else if (attachment.kind === "audio" && original) {
      box.append(renderVoicePlayer(attachment, (element) => refresh(element, attachment, (a) => a.url)));
    } else if (attachment.kind === "video" && original) {
      const player = h(attachment.kind, { class: `attachment-${attachment.kind}`, controls: true, preload: "metadata", src: original, "aria-label": name });
      player.addEventListener("error", () => refresh(player, attachment, (a) => a.url));
      box.append(h("figure", { class: "attachment-media" }, player, h("figcaption", {}, name)));
    } else {
      box.append(h(original ? "a" : "span", {
        class: "attachment-file",
        href: original || undefined,
        download: original ? name : undefined,
        "aria-label": `Download ${name}, ${formatBytes(attachment.size)}`,
      }, h("span", { class: "attachment-file-icon" }, icon("file", { size: 18 })),
      h("span", { class: "attachment-file-text" },
        h("span", { class: "attachment-file-name" }, name),
        h("span", { class: "attachment-file-size" }, formatBytes(attachment.size))),
      original ? icon("download", { size: 16 }) : null));
    }
  }
  return box;
}
