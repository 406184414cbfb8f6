// "Verify" a contact (docs/e2ee.md "Verifying a contact"): the pair's safety number and
// the same as a QR code, both computed in this browser from the keys it will use — the QR
// is drawn here (vendor/qrcode-generator, MIT) so the server, whose keys are what is being
// checked, has no say in it. "Mark as verified" is kept in this browser only.

import { e2ee } from "../e2ee/engine.js";
import { markVerified, qrPayload, trustOf, unmarkVerified } from "../e2ee/trust.js";
import { h, icon, toast } from "../dom.js";
import { store } from "../store.js";
import qrcode from "../vendor/qrcode-generator/qrcode.js";
import { openDialog } from "./dialogs.js";

const SVG = "http://www.w3.org/2000/svg";
const QUIET_ZONE = 4; // modules of white around the code (ISO/IEC 18004)

/** An SVG of `text` as a QR code (error correction M), one path of dark modules. */
export function qrSvg(text, { label = "QR code" } = {}) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const count = qr.getModuleCount();
  const size = count + 2 * QUIET_ZONE;
  let d = "";
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (qr.isDark(row, col)) d += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "verify-qr");
  svg.dataset.qrText = text;
  svg.dataset.modules = String(count);
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#fff");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(background, path);
  return svg;
}

/** A "Verified" badge for a contact's name. */
export function verifiedBadge() {
  return h("span", { class: "verified-badge", title: "Safety number verified on this device" }, icon("check", { size: 12 }), " Verified");
}

/** Open the verify view for `userId`; `onChange` runs after a mark or unmark. */
export async function openVerify(userId, { onChange } = {}) {
  const name = store.displayName(userId);
  const trust = await trustOf(e2ee, userId);
  const state = h("p", { class: trust.verified ? "verify-state is-verified" : "verify-state" },
    trust.verified ? [icon("check", { size: 15 }), ` You verified ${name} on this device.`] : `Not verified yet on this device.`);
  const body = h("div", { class: "stack verify-view" },
    trust.changed ? h("p", { class: "e2ee-warning", role: "alert" }, icon("alert", { size: 15 }),
      ` ${name}'s keys changed since ${trust.keysChanged ? "this browser first saw them" : "you verified them"}. Compare the new safety number before you trust it.`) : null,
    h("p", { class: "dialog-text" }, `Compare these numbers with ${name}'s screen (in person or on a call), or let them scan the code. If they match, nobody can read along.`),
    h("p", { class: "safety-number", "aria-label": "Safety number" }, trust.number),
    qrSvg(qrPayload(store.me.id, userId, trust.number), { label: `QR code of the safety number with ${name}` }),
    state);
  const done = async (action, message) => {
    await action();
    toast(message);
    onChange?.();
  };
  openDialog({
    title: `Verify ${name}`,
    className: "verify-dialog",
    body,
    actions: trust.verified
      ? [
        { label: "Remove verification", onClick: () => done(() => unmarkVerified(e2ee, userId), `${name} is no longer marked verified`) },
        { label: "Close", primary: true },
      ]
      : [
        { label: "Not now" },
        { label: "Mark as verified", primary: true, onClick: () => done(() => markVerified(e2ee, userId, trust.number), `${name} is verified`) },
      ],
  });
}
