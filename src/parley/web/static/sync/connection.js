// The signed-in session's gateway (socket.js), shared by every part of the sync engine:
// set by session.js at start, null again at stop. An object rather than a bare binding so
// that each reader sees the current gateway at the moment it calls.

export const connection = { gateway: null };
