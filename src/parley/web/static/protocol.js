// Generated from docs/protocol.schema.json by `parley protocol-schema`. Do not edit:
// add events, methods and codes in src/parley/wire (see its docstring), then regenerate.

/** Every event type the server pushes. */
export const EVENT_TYPES = Object.freeze(["command.response", "contact.accepted", "contact.removed", "contact.requested", "conversation.created", "conversation.deleted", "conversation.settings.updated", "conversation.updated", "device.updated", "export.updated", "member.added", "member.removed", "member.updated", "message.created", "message.deleted", "message.updated", "messages.expired", "presence.updated", "reaction.added", "reaction.removed", "receipt.delivered", "receipt.read", "report.resolved", "session.revoked", "thread.updated", "to_device", "typing.started", "typing.stopped", "user.erased", "user.settings.updated", "user.updated"]);

/** Events whose data.seq is a position in the conversation's seq stream (resume, dedupe). */
export const SEQ_EVENTS = new Set(["message.created", "message.deleted", "message.updated", "reaction.added", "reaction.removed"]);

/** Methods a client may call. */
export const METHODS = Object.freeze(["delivered.mark", "message.delete", "message.edit", "message.send", "presence.set", "reaction.add", "reaction.remove", "read.mark", "typing.start", "typing.stop"]);

/** Close codes of /ws (docs/protocol.md "Close codes"). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  FRAME_TOO_LARGE: 1009,
  INTERNAL_ERROR: 1011,
  AUTHENTICATION_FAILED: 4001,
  TOKEN_EXPIRED: 4002,
  NOT_IDENTIFIED: 4003,
  RATE_LIMITED: 4008,
  TOO_SLOW: 4009,
  HEARTBEAT_TIMEOUT: 4010,
  RESYNC: 4011,
  TOO_MANY_CONNECTIONS: 4029,
});
