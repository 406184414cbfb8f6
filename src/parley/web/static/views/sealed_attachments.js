// Attachments of an end-to-end encrypted message (docs/e2ee.md "Encrypted attachments"): the
// server holds opaque blobs, the decrypted message names them with their keys. Images show
// their decrypted thumbnail (or the image itself when the sender made none, as the SDK does)
// and open full size in the viewer; files download decrypted. A blob that does not decrypt
// says so in place.

import { formatBytes, h, icon } from "../dom.js";
import { decryptedUrl } from "../e2ee/media.js";
import { openImageViewer } from "./viewer.js";

const MAX_WIDTH = 360;
const MAX_HEIGHT = 280;

function fit(width, height) {
  if (!(width > 0) || !(height > 0)) return {};
  const scale = Math.min(1, MAX_WIDTH / width, MAX_HEIGHT / height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

function failed(element, name) {
  element.replaceChildren(icon("lock", { size: 14 }), ` Can't decrypt ${name}`);
  element.classList.add("attachment-undecrypted");
  element.setAttribute("role", "status");
}

function sealedImage(info, name, message) {
  const preview = info.thumbnail && typeof info.thumbnail === "object" ? info.thumbnail : info;
  const img = h("img", { class: "attachment-img", alt: name, ...fit(info.width || preview.width, info.height || preview.height) });
  const link = h("a", {
    class: "attachment-image attachment-sealed",
    href: "#",
    "aria-label": `Open image ${name}`,
    dataset: { sealedId: info.id },
    onclick: async (event) => {
      event.preventDefault();
      try {
        const url = await decryptedUrl(info);
        openImageViewer([{ id: info.id, name, url, width: info.width, height: info.height, sender_id: message.sender_id, sent_at: message.created_at }], 0);
      } catch {
        failed(link, name);
      }
    },
  }, img);
  decryptedUrl(preview, preview === info ? info.content_type : preview.content_type)
    .then((url) => { img.src = url; })
    .catch(() => failed(link, name));
  return link;
}

function sealedFile(info, name) {
  const button = h("button", {
    type: "button",
    class: "attachment-file attachment-sealed",
    "aria-label": `Download ${name}, ${formatBytes(info.size)}`,
    dataset: { sealedId: info.id },
    onclick: async () => {
      try {
        const url = await decryptedUrl(info);
        const save = h("a", { href: url, download: name, hidden: true });
        document.body.append(save);
        save.click();
        save.remove();
      } catch {
        failed(button, name);
      }
    },
  }, h("span", { class: "attachment-file-icon" }, icon("file", { size: 18 })),
  h("span", { class: "attachment-file-text" },
    h("span", { class: "attachment-file-name" }, name),
    h("span", { class: "attachment-file-size" }, formatBytes(info.size))),
  icon("download", { size: 16 }));
  return button;
}

export function renderSealedAttachments(descriptions, message) {
  const box = h("div", { class: "msg-attachments" });
  for (const info of descriptions) {
    const name = typeof info.name === "string" && info.name ? info.name : "file";
    const image = typeof info.content_type === "string" && info.content_type.startsWith("image/");
    box.append(image ? sealedImage(info, name, message) : sealedFile(info, name));
  }
  return box;
}
