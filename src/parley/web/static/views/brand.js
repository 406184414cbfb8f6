// The Parley mark: two overlapping speech bubbles, drawn as SVG.

const SVG_NS = "http://www.w3.org/2000/svg";

export function logo(size = 28) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 32 32");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("class", "logo");
  svg.setAttribute("aria-hidden", "true");
  const back = document.createElementNS(SVG_NS, "path");
  back.setAttribute("d", "M12 4h14a4 4 0 0 1 4 4v9a4 4 0 0 1-4 4h-1v4l-5-4h-8a4 4 0 0 1-4-4V8a4 4 0 0 1 4-4z");
  back.setAttribute("class", "logo-back");
  const front = document.createElementNS(SVG_NS, "path");
  front.setAttribute("d", "M6 11h12a4 4 0 0 1 4 4v7a4 4 0 0 1-4 4h-7l-5 4v-4a4 4 0 0 1-4-4v-7a4 4 0 0 1 4-4z");
  front.setAttribute("class", "logo-front");
  svg.append(back, front);
  return svg;
}
