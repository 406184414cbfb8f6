// Verification of contacts (docs/e2ee.md "Verifying a contact"): the pair's safety number
// over the devices the server lists now, whether the user marked it verified here, and
// whether a contact's keys changed since — a verified number that no longer matches, or a
// device that lists other keys than this browser first saw (engine.devicesOf leaves such
// a device out until the user compares the new number and marks it verified).
//
// What is verified is kept in this browser only (the device state in IndexedDB): the
// server never learns who checked whom.

import { b64decode } from "./primitives.js";
import { safetyNumber } from "./safety.js";
import * as idb from "./idb.js";

// Safety numbers already computed here (10,400 SHA-512 rounds each): the header, the
// banner and the details panel ask for the same pair often, and the keys rarely change.
const numbers = new Map();

function numberOf(me, myKeys, userId, theirKeys) {
  const key = JSON.stringify([me, myKeys, userId, theirKeys]);
  if (!numbers.has(key)) {
    if (numbers.size > 200) numbers.clear();
    numbers.set(key, safetyNumber(me, myKeys.map(b64decode), userId, theirKeys.map(b64decode)));
  }
  return numbers.get(key);
}

/** `{number, verified, changed, keysChanged}` for the pair of this user and `userId`. */
export async function trustOf(engine, userId) {
  await engine.ready;
  // Both sides' devices are remembered (trust on first use, as the SDK's safety_number):
  // the number shown covers our own devices too, and a key request from one of them that
  // later lists other keys is then refused, not answered with what we hold. A device whose
  // listed keys changed is flagged.
  await engine.devicesOf([engine.userId, userId]);
  const listed = await engine.listedDevices([engine.userId, userId]);
  const keys = (id) => listed.filter((d) => d.user_id === id).map((d) => d.identity_keys.signing_key).sort();
  const number = await numberOf(engine.userId, keys(engine.userId), userId, keys(userId));
  const state = await idb.load(engine.userId);
  const mark = state?.verified?.[userId] || null;
  const keysChanged = (state?.identityChanges || []).some((c) => c.user_id === userId);
  return {
    number,
    verified: Boolean(mark) && mark.number === number && !keysChanged,
    // Verified before, and the number is not the one compared then: the badge goes.
    changed: keysChanged || (Boolean(mark) && mark.number !== number),
    keysChanged,
  };
}

/**
 * Mark the pair verified at `number` (the one the user compared): refused when the
 * listed keys moved on meanwhile. The contact's listed keys become the known ones, so a
 * device flagged for changed keys is used again, with fresh pairwise sessions and a new
 * epoch in every conversation with the contact.
 */
export async function markVerified(engine, userId, number) {
  await engine.ready;
  const listed = (await engine.listedDevices([engine.userId, userId])).filter((d) => d.user_id === userId);
  const now = await trustOf(engine, userId);
  if (now.number !== number) throw new Error("The safety number changed while you compared it: compare the new one");
  await idb.transaction(engine.userId, async (state) => {
    for (const raw of listed) {
      const key = `${raw.user_id}|${raw.device_id}`;
      const keys = raw.identity_keys;
      const known = state.knownDevices[key];
      if (known && known.signing_key === keys.signing_key && known.identity_key === keys.identity_key) continue;
      state.knownDevices[key] = { signing_key: keys.signing_key, identity_key: keys.identity_key, first_seen: Date.now() / 1000 };
      delete state.pairwise[key]; // sessions with the old keys
      // A new epoch in every conversation with this contact: the device with the new keys
      // never gets a chain that carried what was sent while it was left out, and whoever
      // holds the old keys gets nothing sent from now on (docs/e2ee.md "Key changes").
      for (const [conversationId, session] of Object.entries(state.outbound)) {
        if (session.members.includes(userId) || session.sharedWith.includes(key)) delete state.outbound[conversationId];
      }
    }
    state.identityChanges = (state.identityChanges || []).filter((c) => c.user_id !== userId);
    state.verified = { ...(state.verified || {}), [userId]: { number, at: Date.now() / 1000 } };
    return { state };
  });
}

/** Forget that the pair was verified here. */
export async function unmarkVerified(engine, userId) {
  await engine.ready;
  await idb.transaction(engine.userId, async (state) => {
    if (!state?.verified?.[userId]) return null;
    delete state.verified[userId];
    return { state };
  });
}

/** The text a QR code carries: the same on both sides (lower user id first), like the number. */
export function qrPayload(userA, userB, number) {
  const [first, second] = [userA, userB].sort();
  return `parley-safety-number:v1:${first}:${second}:${number.replace(/ /g, "")}`;
}
