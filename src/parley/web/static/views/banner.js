// The connection banner: connecting / reconnecting (with a countdown and "Reconnect now")
// / offline, plus how many messages wait to be sent. Hidden while connected.

import { h, icon } from "../dom.js";
import { store } from "../store.js";
import { connection } from "../sync/connection.js";

// The first connection usually takes a few milliseconds; only say so when it does not.
const FIRST_CONNECT_GRACE_MS = 1500;

export class ConnectionBanner {
  constructor() {
    this.el = h("div", { class: "connection-banner", role: "status", "aria-live": "polite", hidden: true, dataset: { state: "idle" } });
    this.everReady = false;
    this.startedAt = Date.now();
    this.offs = [store.on("connection", () => this.render()), store.on("outbox", () => this.render())];
    this.timer = setInterval(() => this.render(), 1000);
    this.render();
  }

  destroy() {
    this.offs.forEach((off) => off());
    clearInterval(this.timer);
  }

  render() {
    const { state } = store.connection;
    if (state === "ready") this.everReady = true;
    const waiting = store.outbox.filter((e) => e.state !== "failed").length;
    const queued = waiting ? ` ${waiting} message${waiting === 1 ? "" : "s"} will be sent when you're back.` : "";
    let content = null;
    let kind = "info";
    if (state === "offline") {
      kind = "offline";
      content = [icon("wifiOff", { size: 16 }), h("span", {}, h("strong", {}, "You're offline."), ` Check your connection.${queued || " New messages will appear when you're back."}`)];
    } else if (state === "waiting") {
      kind = "warning";
      const seconds = Math.max(0, Math.ceil(((connection.gateway?.retryAt || 0) - Date.now()) / 1000));
      content = [
        icon("refresh", { size: 16 }),
        h("span", {}, h("strong", {}, this.everReady ? "Connection lost." : "Can't connect to live updates."), ` Retrying in ${seconds}s.${queued}`),
        h("button", { type: "button", class: "banner-btn", onclick: () => connection.gateway?.reconnectNow() }, "Reconnect now"),
      ];
    } else if (state === "connecting" && (this.everReady || Date.now() - this.startedAt > FIRST_CONNECT_GRACE_MS)) {
      content = [h("span", { class: "spinner spinner-small" }), h("span", {}, this.everReady ? "Reconnecting…" : "Connecting…")];
    }
    this.el.dataset.state = state;
    const signature = content ? `${state}|${content.map((c) => c.textContent ?? "").join("")}` : "";
    if (signature === this._signature) return;
    this._signature = signature;
    this.el.className = `connection-banner banner-${kind}`;
    this.el.hidden = !content;
    this.el.replaceChildren(...(content || []));
  }
}
