// Names for the senders the store has not seen (a former member, say): fetched once each.

import { api } from "../api.js";
import { store } from "../store.js";

const loadingUsers = new Set();

/** Names for sender ids we have never seen (former members, say). */
export function ensureUsers(ids) {
  for (const id of ids) {
    if (!id || store.users.has(id) || loadingUsers.has(id)) continue;
    loadingUsers.add(id);
    api.user(id)
      .then((user) => store.rememberUser(user))
      .catch((error) => {
        // An erased account (docs/lifecycle.md) has no profile any more.
        if (error?.status === 404) store.rememberUser({ id, username: "", display_name: "Deleted user" });
      })
      .finally(() => loadingUsers.delete(id));
  }
}
