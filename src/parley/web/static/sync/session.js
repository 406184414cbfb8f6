// The sync engine of a signed-in session, between the server and the store: started after
// sign-in, stopped at sign-out. It builds the gateway and wires its events, ready and
// state into the other parts (sync/*.js), loads the conversation list, and falls back to
// polling while the socket cannot connect at all.

import { api } from "../api.js";
import { Gateway } from "../socket.js";
import { store } from "../store.js";
import { unwatchVisibility, watchVisibility } from "./activity.js";
import { catchUpOnReady, startPolling, stopPolling } from "./catch_up.js";
import { connection } from "./connection.js";
import { loadConversations, loadThreads } from "./conversations.js";
import { applyGatewayEvent } from "./gateway_events.js";
import { pumpOutbox, restoreOutbox, stopOutboxRetries } from "./outbox.js";

// Back online: what is queued goes out without waiting for its retry timer.
const pumpWhenOnline = () => pumpOutbox();

export async function startSync(me) {
  store.setMe(me);
  restoreOutbox();
  connection.gateway = new Gateway({
    token: () => api.token(),
    refresh: () => api.refresh(),
    changes: (cid, after) => api.changes(cid, after),
    onEvent: (type, data) => applyGatewayEvent(type, data),
    onReady: (data) => catchUpOnReady(data),
    onState: (state) => onState(state),
  });
  window.addEventListener("online", pumpWhenOnline);
  watchVisibility();
  await loadConversations();
  loadThreads().catch(() => {});
  connection.gateway.start();
  startPolling();
  pumpOutbox();
}

export function stopSync() {
  connection.gateway?.stop();
  connection.gateway = null;
  stopPolling();
  stopOutboxRetries();
  window.removeEventListener("online", pumpWhenOnline);
  unwatchVisibility();
}

function onState(state) {
  // A failed refresh already told the app (api.onAuthLost); the gateway only stops.
  store.setConnection({ state, retryAt: connection.gateway?.retryAt || 0 });
}
