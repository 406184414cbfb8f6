// What others see of this user right now, over the socket only (nothing is queued): typing
// in a conversation, and away while the tab has been hidden for a while.

import { connection } from "./connection.js";

const TYPING_REPEAT_MS = 3000;
const AWAY_AFTER_MS = 5 * 60 * 1000;

const typingSent = new Map();
let away = false;
let awayTimer = null;

export function sendTyping(id, active) {
  const gateway = connection.gateway;
  if (!gateway?.ready) return;
  const last = typingSent.get(id) || 0;
  if (active) {
    if (Date.now() - last < TYPING_REPEAT_MS) return;
    typingSent.set(id, Date.now());
    gateway.notify("typing.start", { conversation_id: id });
  } else if (last) {
    typingSent.delete(id);
    gateway.notify("typing.stop", { conversation_id: id });
  }
}

/** Hidden for a while: tell others we're away; back in view: online again. */
function onVisibility() {
  clearTimeout(awayTimer);
  if (document.visibilityState === "hidden") {
    awayTimer = setTimeout(() => setAway(true), AWAY_AFTER_MS);
  } else {
    setAway(false);
  }
}

function setAway(value) {
  if (away === value) return;
  away = value;
  connection.gateway?.notify("presence.set", { status: value ? "away" : "online" });
}

export function watchVisibility() {
  document.addEventListener("visibilitychange", onVisibility);
}

export function unwatchVisibility() {
  document.removeEventListener("visibilitychange", onVisibility);
  clearTimeout(awayTimer);
  away = false;
}
