// One message to the server: over the socket when it is ready (and the message has no
// files), over REST otherwise or when the socket gives no answer. Idempotent by
// client_msg_id, so sending the same entry again never makes a second message. In an
// encrypted conversation the text is sealed in this browser first.

import { api } from "../api.js";
import { GatewayUnavailable } from "../socket.js";
import { e2ee } from "../e2ee/engine.js";
import { store } from "../store.js";
import { connection } from "./connection.js";

/** A fresh idempotency key for a message this browser sends. */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A reply in a thread (the thread panel): sent at once, not through the outbox (its pending
 * state belongs to the panel, not to the conversation's timeline), and sealed like any
 * other message when the conversation is encrypted. Resolves to the stored message.
 */
export function sendThreadReply(conversationId, rootId, content, { attachments = [], broadcast = false } = {}) {
  return deliver({
    client_msg_id: newClientId(),
    conversation_id: conversationId,
    content,
    attachments, // sealed files carry their descriptions (views/composer.js)
    attachment_ids: attachments.flatMap((a) => a.e2ee_ids || [a.id]),
    thread_root_id: rootId,
    thread_broadcast: broadcast,
  });
}

/** Sends the entry (an outbox entry or a thread reply); resolves to the stored message. */
export async function deliver(entry) {
  if (store.conversations.get(entry.conversation_id)?.encrypted) return deliverEncrypted(entry);
  const params = { conversation_id: entry.conversation_id, content: entry.content, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
  if (entry.reply_to_id) params.reply_to_id = entry.reply_to_id;
  const files = entry.attachment_ids || [];
  if (connection.gateway?.ready && !files.length) {
    try {
      const data = await connection.gateway.call("message.send", params);
      return data.message;
    } catch (error) {
      if (!(error instanceof GatewayUnavailable)) throw error;
      // No answer: the same client_msg_id over REST returns the message if it went in.
    }
  }
  const body = { content: entry.content, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
  if (entry.reply_to_id) body.reply_to_id = entry.reply_to_id;
  if (files.length) body.attachment_ids = files;
  return api.send(entry.conversation_id, body);
}

/**
 * An end-to-end encrypted send: the text is sealed in this browser (e2ee/engine.js) and
 * the server gets ciphertext only. The sealed form is kept with the entry, so a retry of
 * the same client_msg_id sends the same bytes (the server deduplicates on both).
 */
async function deliverEncrypted(entry) {
  const files = entry.attachments || [];
  if (files.some((a) => !a.e2ee)) {
    // Picked before the conversation was encrypted: the server would refuse a plain upload.
    throw new Error("These files were uploaded unencrypted: remove them and attach them again");
  }
  const described = files.map((a) => a.e2ee);
  entry.sealed ||= await e2ee.encrypt(entry.conversation_id, entry.content, described);
  const params = { conversation_id: entry.conversation_id, ...entry.sealed, client_msg_id: entry.client_msg_id, ...threadFields(entry) };
  if (entry.attachment_ids?.length) params.attachment_ids = entry.attachment_ids;
  if (entry.reply_to_id) params.reply_to_id = entry.reply_to_id;
  let message = null;
  if (connection.gateway?.ready) {
    try {
      message = (await connection.gateway.call("message.send", params)).message;
    } catch (error) {
      if (!(error instanceof GatewayUnavailable)) throw error;
    }
  }
  if (!message) {
    const { conversation_id: cid, ...body } = params;
    message = await api.send(cid, body);
  }
  // Our own text and files, as sealed: no need to decrypt them back.
  return { ...message, content: entry.content, e2ee_attachments: described, decrypted: true };
}

/** A thread reply's fields of message.send (none for a message in the conversation). */
function threadFields(entry) {
  return entry.thread_root_id ? { thread_root_id: entry.thread_root_id, thread_broadcast: Boolean(entry.thread_broadcast) } : {};
}
