// Changes to a message already sent: edit, delete, react. Edits and deletes go over the
// socket when it is ready and fall back to REST; an encrypted message is edited with new
// ciphertext, never text.

import { api } from "../api.js";
import { GatewayError, GatewayUnavailable } from "../socket.js";
import { e2ee } from "../e2ee/engine.js";
import { store } from "../store.js";
import { connection } from "./connection.js";

export async function editMessage(message, content) {
  if (message.ciphertext) {
    // An encrypted message is edited with new ciphertext (docs/e2ee.md), never text.
    // The files stay: their descriptions are sealed again with the new text.
    const files = message.e2ee_attachments || [];
    const sealed = await e2ee.encrypt(message.conversation_id, content, files);
    const path = `/messages/${encodeURIComponent(message.id)}`;
    const edited = await mutate("message.edit", { message_id: message.id, ...sealed }, () => api.patch(path, sealed).then((r) => r.message));
    store.applyMessage({ ...edited, content, e2ee_attachments: files, decrypted: true });
    return;
  }
  store.applyMessage(await mutate("message.edit", { message_id: message.id, content }, () => api.editMessage(message.id, content)));
}

export async function removeMessage(message) {
  store.applyMessage(await mutate("message.delete", { message_id: message.id }, () => api.deleteMessage(message.id)));
}

export async function toggleReaction(message, emoji) {
  const mine = message.reactions?.some((r) => r.emoji === emoji && r.user_ids.includes(store.me.id));
  const result = mine ? await api.removeReaction(message.id, emoji) : await api.addReaction(message.id, emoji);
  store.applyMessage(result);
}

/** The gateway call when it answers with the message; otherwise the REST call `rest`. */
async function mutate(method, params, rest) {
  if (connection.gateway?.ready) {
    try {
      const data = await connection.gateway.call(method, params);
      if (data?.message) return data.message;
    } catch (error) {
      if (!(error instanceof GatewayUnavailable) && !(error instanceof GatewayError && error.code === "UNKNOWN_METHOD")) throw error;
    }
  }
  return rest();
}
