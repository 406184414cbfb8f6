// One message in the timeline: author and time (or grouped under the previous one), reply
// quote, Markdown text, reactions, ticks or send state, and the hover / focus toolbar.

import { avatar, formatFull, formatTime, h, icon } from "../dom.js";
import { isJumbo, plainText, renderMarkdown } from "../markdown.js";
import { e2ee } from "../e2ee/engine.js";
import * as searchIndex from "../e2ee/search_index.js";
import { store } from "../store.js";
import { renderAttachments } from "./attachments.js";
import { renderLinkPreview } from "./link_preview.js";
import { renderSealedAttachments } from "./sealed_attachments.js";
import { systemText } from "./sidebar.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "👀", "🙏"];

/**
 * ctx: {conversation, grouped, highlighted, editing, receipt, showReadBy, pending,
 *       users (Map username → user), actions}
 */
export function renderMessage(message, ctx) {
  if (message.kind === "system") return renderSystem(message, ctx);
  const own = message.sender_id === store.me.id;
  const author = store.displayName(message.sender_id);
  const mentioned = (message.mentions || []).includes(store.me.id);
  const pending = ctx.pending;
  const el = h("div", {
    class: [
      "msg",
      ctx.grouped && "is-grouped",
      own && "is-own",
      pending && "is-pending",
      pending?.state === "failed" && "is-failed",
      ctx.highlighted && "is-highlighted",
      mentioned && "is-mentioned",
      message.deleted && "is-deleted",
    ],
    role: "article",
    tabindex: "-1",
    id: pending ? undefined : `message-${message.id}`,
    dataset: { messageId: pending ? undefined : message.id, clientMsgId: pending ? pending.client_msg_id : undefined, seq: message.seq, sender: message.sender_id },
    "aria-label": `${author}, ${formatFull(message.created_at)}`,
  });

  const gutter = h("div", { class: "msg-gutter" },
    ctx.grouped
      ? h("time", { class: "msg-hover-time", datetime: message.created_at, title: formatFull(message.created_at) }, formatTime(message.created_at))
      : avatar(message.sender_id, author));
  const main = h("div", { class: "msg-main" });
  if (!ctx.grouped) {
    main.append(h("div", { class: "msg-head" },
      h("span", { class: "msg-author" }, author),
      store.users.get(message.sender_id)?.is_bot ? h("span", { class: "tag bot-tag" }, "Bot") : null,
      h("time", { class: "msg-time", datetime: message.created_at, title: formatFull(message.created_at) }, formatTime(message.created_at))));
  }
  if (message.forwarded_from && !message.deleted) {
    main.append(h("div", { class: "msg-forwarded" }, icon("forward", { size: 13 }),
      ` Forwarded from ${store.displayName(message.forwarded_from.sender_id)}`));
  }
  if (message.thread_root_id && message.thread_broadcast) {
    main.append(h("button", { type: "button", class: "msg-thread-origin link-btn", onclick: () => ctx.actions.openThread?.(message.thread_root_id) },
      icon("thread", { size: 13 }), " Replied in a thread"));
  }
  if (message.reply_to) main.append(replyQuote(message.reply_to, ctx));

  if (ctx.editing) {
    main.append(ctx.actions.editor(message));
  } else if (message.deleted) {
    // Deleted while this browser was away: out of the local search index too.
    if (store.conversations.get(message.conversation_id)?.encrypted) searchIndex.forgetMessage(store.me.id, message.id);
    main.append(h("div", { class: "msg-text msg-tombstone" }, icon("trash", { size: 14 }), " This message was deleted"));
  } else if (message.ciphertext && message.decrypted !== true) {
    main.append(undecrypted(message));
  } else if (message.content || !(message.ciphertext ? message.e2ee_attachments : message.attachments)?.length) {
    const text = h("div", { class: ["msg-text", isJumbo(message.content) && "is-jumbo"], dir: "auto" },
      renderMarkdown(message.content, { users: ctx.users, me: store.me.username.toLowerCase() }));
    if (message.edited_at) text.append(h("span", { class: "msg-edited", title: `Edited ${formatFull(message.edited_at)}` }, " (edited)"));
    main.append(text);
  }
  if (message.ciphertext) {
    // The server's attachments are opaque blobs: the decrypted message says what they are.
    if (!message.deleted && message.decrypted === true && message.e2ee_attachments?.length) main.append(renderSealedAttachments(message.e2ee_attachments, message));
  } else if (!message.deleted && message.attachments?.length) main.append(renderAttachments(message.attachments, message));
  if (!message.deleted && message.link_preview) main.append(renderLinkPreview(message.link_preview) || "");
  if (!message.deleted && message.reactions?.length) main.append(reactions(message, ctx));
  if (message.thread?.reply_count) main.append(threadSummary(message, ctx));
  if (message.pinned && !message.deleted) {
    const mark = h("div", { class: "msg-pinned", title: `Pinned by ${store.displayName(message.pinned.by)}` }, icon("pin", { size: 12 }), ` Pinned by ${store.displayName(message.pinned.by)}`);
    main.insertBefore(mark, ctx.grouped ? main.firstChild : main.firstChild?.nextSibling ?? null); // under the author
  }
  if (pending) main.append(pendingState(pending, ctx));

  el.append(gutter, main);
  if (own && !pending && !message.deleted) el.append(ticks(message, ctx));
  if (!pending && !message.deleted && !ctx.editing) el.append(toolbar(message, own, ctx));
  return el;
}

/**
 * An end-to-end encrypted message not (yet) readable here: decrypted in the background, then
 * re-rendered (docs/e2ee.md "Receiving"). Without its key: "can't decrypt yet" and a retry
 * that asks this user's other devices, then "waiting for keys" until one answers. Ciphertext
 * that no key opens (damaged, forged) says so, with no retry.
 */
function undecrypted(message) {
  if (message.decrypted === undefined) e2ee.decryptSoon(message);
  const box = h("div", { class: "msg-text msg-undecrypted", title: message.decryption_error || "" }, icon("lock", { size: 14 }));
  if (message.decrypted === undefined) {
    box.append(" Decrypting…");
  } else if (!message.decryption_missing) {
    box.classList.add("is-damaged");
    box.append(" Can't decrypt this message: it does not open with its key");
  } else if (message.key_requested) {
    box.classList.add("is-waiting");
    box.append(h("span", { role: "status" }, " Waiting for keys from your other devices…"));
  } else {
    box.append(" Can't decrypt this message yet: its key has not reached this browser ",
      h("button", {
        type: "button",
        class: "link-btn",
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await e2ee.requestKey(message);
          } catch {
            message.key_requested = false;
          }
          e2ee.onDecrypted(message);
        },
      }, "Ask my other devices"));
  }
  return box;
}

function renderSystem(message, ctx) {
  return h("div", {
    class: ["msg-system", ctx.highlighted && "is-highlighted"],
    role: "article",
    tabindex: "-1",
    id: `message-${message.id}`,
    dataset: { messageId: message.id, seq: message.seq },
  }, h("span", { class: "msg-system-text" }, systemText(message)),
  h("time", { class: "msg-system-time", datetime: message.created_at, title: formatFull(message.created_at) }, formatTime(message.created_at)));
}

function replyQuote(snapshot, ctx) {
  const live = ctx.quoted;
  const reply = live ? { ...snapshot, content: live.content, deleted: live.deleted } : snapshot;
  const sealed = !reply.deleted && !reply.content && ctx.conversation?.encrypted;
  const text = reply.deleted ? "Original message was deleted" : plainText(reply.content).slice(0, 140) || (sealed ? "Encrypted message" : "Message");
  const quoteText = h("span", { class: ["msg-quote-text", reply.deleted && "is-deleted"], dir: "auto" }, text);
  const button = h("button", {
    type: "button",
    class: "msg-quote",
    "aria-label": `Reply to ${store.displayName(reply.sender_id)}: ${text}. Show the original message`,
    onclick: () => ctx.actions.jumpTo(reply.id),
  }, icon("reply", { size: 14 }),
  h("span", { class: "msg-quote-author" }, store.displayName(reply.sender_id)),
  quoteText);
  if (sealed && !live) {
    // Encrypted and not loaded: the server's snapshot has no text; read and decrypt it here.
    e2ee.quoteText(reply.id).then((plain) => { if (plain) quoteText.textContent = plainText(plain).slice(0, 140); }).catch(() => {});
  }
  return button;
}

function threadSummary(message, ctx) {
  const thread = message.thread;
  const count = thread.reply_count === 1 ? "1 reply" : `${thread.reply_count} replies`;
  const state = store.threadStates.get(message.id);
  const unread = state?.following && state.unread_count ? state.unread_count : 0;
  return h("button", {
    type: "button",
    class: ["msg-thread", unread && "has-unread"],
    "aria-label": `${count}${unread ? `, ${unread} new` : ""}. Open the thread`,
    onclick: () => ctx.actions.openThread?.(message.id),
  }, h("span", { class: "msg-thread-people" }, (thread.participant_ids || []).slice(0, 3).map((id) => avatar(id, store.displayName(id), { size: "xs" }))),
  h("span", { class: "msg-thread-count" }, count),
  unread ? h("span", { class: "badge badge-small" }, String(unread)) : null,
  thread.last_reply_at ? h("span", { class: "msg-thread-last muted" }, `Last reply ${formatTime(thread.last_reply_at)}`) : null);
}

function reactions(message, ctx) {
  const row = h("div", { class: "msg-reactions", role: "group", "aria-label": "Reactions" });
  for (const reaction of message.reactions) {
    const mine = reaction.user_ids.includes(store.me.id);
    const names = reaction.user_ids.map((id) => (id === store.me.id ? "You" : store.displayName(id)));
    const who = names.length > 6 ? `${names.slice(0, 6).join(", ")} and ${names.length - 6} others` : names.join(", ");
    row.append(h("button", {
      type: "button",
      class: ["reaction", mine && "is-mine"],
      "aria-pressed": mine ? "true" : "false",
      "aria-label": `${reaction.emoji} ${reaction.count}: ${who}. ${mine ? "Remove your reaction" : "React too"}`,
      title: `${who} reacted with ${reaction.emoji}`,
      dataset: { emoji: reaction.emoji },
      onclick: () => ctx.actions.react(message, reaction.emoji),
    }, h("span", { class: "reaction-emoji" }, reaction.emoji), h("span", { class: "reaction-count" }, String(reaction.count))));
  }
  row.append(h("button", {
    type: "button",
    class: "reaction reaction-add",
    "aria-label": "Add a reaction",
    title: "Add a reaction",
    onclick: (event) => ctx.actions.pickReaction(message, event.currentTarget),
  }, icon("smile", { size: 15 }), icon("plus", { size: 11 })));
  return row;
}

function pendingState(entry, ctx) {
  if (entry.state === "failed") {
    return h("div", { class: "msg-send-state is-failed", role: "status" },
      icon("alert", { size: 14 }),
      h("span", {}, `Not sent${entry.error ? `: ${entry.error}` : ""}.`),
      h("button", { type: "button", class: "link-btn", onclick: () => ctx.actions.retry(entry) }, "Retry"),
      h("button", { type: "button", class: "link-btn", onclick: () => ctx.actions.discard(entry) }, "Delete"));
  }
  const text = entry.state === "queued" ? "Waiting for connection…" : "Sending…";
  return h("div", { class: "msg-send-state", role: "status" }, icon("clock", { size: 13 }), h("span", {}, text));
}

function ticks(message, ctx) {
  const receipt = ctx.receipt || { state: "sent", readBy: 0, others: 0 };
  const group = ctx.conversation?.type === "group";
  const labels = { sent: "Sent", delivered: "Delivered", read: group ? "Read by everyone" : "Read" };
  let label = labels[receipt.state];
  if (group && receipt.state !== "read" && receipt.readBy > 0) label = `Read by ${receipt.readBy} of ${receipt.others}`;
  return h("button", {
    type: "button",
    class: ["msg-ticks", `is-${receipt.state}`],
    "aria-label": `${label}. Show who has read it`,
    title: label,
    dataset: { status: receipt.state, readBy: receipt.readBy },
    onclick: (event) => ctx.actions.showReceipts(message, event.currentTarget),
  }, icon(receipt.state === "sent" ? "check" : "checks", { size: 15 }),
  group && ctx.showReadBy && receipt.readBy > 0 ? h("span", { class: "msg-readby" }, receipt.state === "read" ? "Read by all" : `Read by ${receipt.readBy}`) : null);
}

function toolbar(message, own, ctx) {
  const bar = h("div", { class: "msg-toolbar", role: "toolbar", "aria-label": "Message actions" });
  bar.append(
    h("button", { type: "button", class: "icon-btn", "aria-label": "Add reaction", title: "Add reaction", onclick: (e) => ctx.actions.pickReaction(message, e.currentTarget) }, icon("smile", { size: 16 })),
    h("button", { type: "button", class: "icon-btn", "aria-label": "Reply", title: "Reply", onclick: () => ctx.actions.reply(message) }, icon("reply", { size: 16 })),
  );
  // Named "Thread", not "Reply in thread": "Reply" alone must keep naming one button.
  if (message.kind === "text" && !message.thread_root_id && ctx.actions.openThread) {
    bar.append(h("button", { type: "button", class: "icon-btn", "aria-label": "Thread", title: "Reply in thread", onclick: () => ctx.actions.openThread(message.id) }, icon("thread", { size: 16 })));
  }
  if (own && message.kind === "text") {
    bar.append(h("button", { type: "button", class: "icon-btn", "aria-label": "Edit", title: "Edit", onclick: () => ctx.actions.edit(message) }, icon("edit", { size: 16 })));
  }
  bar.append(h("button", { type: "button", class: "icon-btn", "aria-label": "More actions", title: "More actions", "aria-haspopup": "menu", onclick: (e) => ctx.actions.menu(message, e.currentTarget) }, icon("more", { size: 16 })));
  return bar;
}
