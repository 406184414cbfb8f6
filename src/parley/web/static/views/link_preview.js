// A link preview card under a message: the site's name, the page's title (a link to it),
// its description and its picture. Everything comes from Parley's server, which fetched the
// page (services/link_previews.py); the picture is served by Parley, never by the site.

import { h } from "../dom.js";
import { safeUrl } from "../markdown.js";

const IMAGE_PREFIX = "/api/v1/link-previews/";

export function renderLinkPreview(preview) {
  const href = safeUrl(preview?.url || "");
  if (!href || !(preview.title || preview.description)) return null;
  const image = preview.image && typeof preview.image.url === "string" && preview.image.url.startsWith(IMAGE_PREFIX) ? preview.image : null;
  const link = (content, attrs = {}) => h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow ugc", ...attrs }, content);
  return h("div", { class: ["link-preview", image && "has-image"], role: "group", "aria-label": `Link preview: ${preview.title || href}` },
    h("div", { class: "link-preview-text" },
      preview.site_name ? h("span", { class: "link-preview-site", dir: "auto" }, preview.site_name) : null,
      preview.title ? link(preview.title, { class: "link-preview-title", dir: "auto" }) : null,
      preview.description ? h("p", { class: "link-preview-description", dir: "auto" }, preview.description) : null),
    image ? link(h("img", { src: image.url, alt: "", loading: "lazy", decoding: "async", width: image.width, height: image.height }), { class: "link-preview-image", tabindex: "-1", "aria-hidden": "true" }) : null);
}
