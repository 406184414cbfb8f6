// Gateway events into the store: messages (live, or replayed by a gap fill), reactions,
// typing, presence, receipts, conversations and their members, and the events that views
// listen for on the store (contacts, exports, threads, commands, settings, trust, E2EE).

import { e2ee } from "../e2ee/engine.js";
import * as searchIndex from "../e2ee/search_index.js";
import { store } from "../store.js";
import { connection } from "./connection.js";
import { loadMembers, refreshConversation } from "./conversations.js";
import { markDeliveredSoon } from "./receipts.js";
import { ensureUsers } from "./users.js";

export function applyGatewayEvent(type, data) {
  const cid = data.conversation_id;
  switch (type) {
    case "message.created":
    case "message.updated":
    case "message.deleted":
    case "message.synced": {
      if (!data.message) return;
      if (!store.conversations.has(cid)) {
        refreshConversation(cid).catch(() => {});
      }
      const live = type === "message.created";
      // A message first seen through a gap fill is as new as a live one (the store
      // counts each seq once, so nothing is counted twice).
      store.applyMessage(data.message, { live: live || type === "message.synced" });
      if (data.message.deleted_at && store.conversations.get(cid)?.encrypted) searchIndex.remove(store.me.id, data.message.id).catch(() => {});
      if (live && data.message.sender_id && data.message.sender_id !== store.me.id) {
        markDeliveredSoon(cid);
        store.emit("incoming", data.message);
      }
      ensureUsers([data.message.sender_id]);
      if (data.message.kind === "system") systemEvent(cid, data.message);
      break;
    }
    case "reaction.added":
    case "reaction.removed":
      if (data.message) store.applyMessage(data.message);
      else if (data.reactions) store.applyReactions(cid, data.message_id, data.reactions, data.seq);
      break;
    case "typing.started":
    case "typing.stopped":
      store.setTyping(cid, data.user_id, type === "typing.started");
      break;
    case "presence.updated":
      store.setPresence(data.user_id, data);
      break;
    case "user.updated":
      if (data.user?.id === store.me?.id) store.setMe({ ...store.me, ...data.user });
      else store.rememberUser(data.user);
      break;
    case "receipt.delivered":
    case "receipt.read":
      store.applyReceipt(cid, data.user_id, data.seq, type === "receipt.read" ? "read" : "delivered");
      break;
    case "conversation.created":
    case "conversation.updated":
      refreshConversation(cid || data.conversation?.id).catch(() => {});
      break;
    case "conversation.deleted":
      store.removeConversation(cid);
      connection.gateway?.untrack(cid);
      break;
    case "member.added":
    case "member.removed":
    case "member.updated":
      membershipEvent(type, data);
      break;
    case "contact.requested":
    case "contact.accepted":
    case "contact.removed":
      store.emit("contacts", data);
      break;
    case "messages.expired": // retention (docs/lifecycle.md)
      store.expire(cid, data.expired_through_seq);
      if (store.conversations.get(cid)?.encrypted) searchIndex.expire(store.me.id, cid, data.expired_through_seq).catch(() => {});
      break;
    case "export.updated": // progress of an export (views/settings.js)
      store.emit(type, data);
      break;
    case "thread.updated": // the caller's follow / read state of a thread (DESIGN §6.5)
      store.setThreadState(data);
      break;
    case "command.response": // a slash command's answer for this user only (views/slash_commands.js)
      store.emit("command.response", data);
      break;
    case "conversation.settings.updated": // notification level / mute (notify-prefs.js)
    case "user.settings.updated":
    case "report.resolved": // a report of the user's was decided (app.js tells them)
      store.emit(type, data);
      break;
    case "device.updated": // a contact's devices changed: verification may no longer hold
      store.emit("trust", data);
      break;
    case "to_device": // pairwise E2EE messages for this browser's device (docs/e2ee.md)
      if (data.device_id && data.device_id === e2ee.deviceId) e2ee.receiveToDevice(data.messages || []).catch(() => {});
      break;
    default:
      break;
  }
}

function membershipEvent(type, data) {
  const cid = data.conversation_id;
  const mine = (data.user_ids || []).includes(store.me.id);
  if (type === "member.removed" && mine) {
    store.removeConversation(cid);
    connection.gateway?.untrack(cid);
    return;
  }
  if (mine || !store.conversations.has(cid)) {
    refreshConversation(cid).catch(() => {});
  } else {
    const conversation = store.conversations.get(cid);
    if (Number.isInteger(data.member_count)) conversation.member_count = data.member_count;
    store.emit(`conversation:${cid}`, conversation);
  }
  if (store.members.has(cid)) loadMembers(cid).catch(() => {});
}

function systemEvent(cid, message) {
  // The system message is the durable record; when typed events were missed (offline),
  // it still tells us that the membership or the settings changed.
  const event = message.system_event || {};
  if (String(event.type || "").startsWith("member.") && (event.user_ids || []).includes(store.me.id) && event.type !== "member.added") {
    if (event.type !== "member.role") {
      refreshConversation(cid).catch(() => {});
      return;
    }
  }
  if (store.members.has(cid) && String(event.type || "").startsWith("member.")) loadMembers(cid).catch(() => {});
  if (event.type === "conversation.updated") refreshConversation(cid).catch(() => {});
}
