// Pairwise channels between two devices (the SDK's parley.client.e2ee.pairwise): X3DH to
// start, the Double Ratchet after. They carry to-device messages (sender keys, key
// requests), never conversation content. Wire format: docs/e2ee.md "To-device messages".

import { ALG_PAIRWISE, VERSION } from "./formats.js";
import { DecryptionError, b64decode, b64encode, fromUtf8, utf8 } from "./primitives.js";
import * as ratchet from "./ratchet.js";
import * as x3dh from "./x3dh.js";

/**
 * Start a session from a claimed, parsed bundle (x3dh.parseBundle). identity =
 * {privateKey, publicKey}; ephemeral and ratchetKey are for test vectors only.
 */
export async function initiate(identity, bundle, { ephemeral = null, ratchetKey = null } = {}) {
  const started = await x3dh.initiate(identity, bundle, ephemeral);
  return {
    peerIdentity: bundle.identityKey,
    ad: started.ad,
    ratchet: await ratchet.initAlice(started.sharedKey, bundle.signedPrekey, ratchetKey),
    baseKey: started.ephemeralPublic,
    // Sent on every message until the peer answers (X3DH §3.3).
    prekey: {
      ephemeral_key: b64encode(started.ephemeralPublic),
      signed_prekey_id: bundle.signedPrekeyId,
      one_time_prekey_id: bundle.oneTimePrekeyId,
    },
    lastReceived: 0,
    createdAt: Date.now() / 1000,
  };
}

/** Bob's side, from the first prekey message's fields; key pairs as {privateKey, publicKey}. */
export async function respond(identity, signedPrekey, oneTimePrekey, theirIdentity, theirEphemeral) {
  const { sharedKey, ad } = await x3dh.respond(identity, signedPrekey, oneTimePrekey, theirIdentity, theirEphemeral);
  return {
    peerIdentity: theirIdentity,
    ad,
    ratchet: ratchet.initBob(sharedKey, signedPrekey),
    baseKey: theirEphemeral,
    prekey: null,
    lastReceived: 0,
    createdAt: Date.now() / 1000,
  };
}

/** The to-device `ciphertext` for `plaintext` (bytes); advances the session. */
export async function encrypt(session, ownIdentityPublic, plaintext) {
  const { header, body } = await ratchet.encrypt(session.ratchet, plaintext, session.ad);
  // Key order and separators as the SDK's json.dumps(..., separators=(",", ":")).
  const wire = {
    v: VERSION,
    alg: ALG_PAIRWISE,
    sender_key: b64encode(ownIdentityPublic),
    prekey: session.prekey,
    header: b64encode(header),
    body: b64encode(body),
  };
  return b64encode(utf8(JSON.stringify(wire)));
}

/** The plaintext bytes of a parsed wire message; the session is unchanged on failure. */
export async function decrypt(session, wire) {
  const plaintext = await ratchet.decrypt(session.ratchet, b64decode(wire.header), b64decode(wire.body), session.ad);
  session.prekey = null; // the peer has this session: no more prekey messages
  session.lastReceived = Date.now() / 1000;
  return plaintext;
}

export function parseWire(ciphertext) {
  let wire;
  try {
    wire = JSON.parse(fromUtf8(b64decode(ciphertext)));
  } catch {
    throw new DecryptionError("not a pairwise message");
  }
  if (!wire || typeof wire !== "object" || wire.v !== VERSION || wire.alg !== ALG_PAIRWISE) {
    throw new DecryptionError("not a pairwise message of a known version");
  }
  for (const name of ["sender_key", "header", "body"]) {
    if (typeof wire[name] !== "string") throw new DecryptionError(`pairwise message without ${name}`);
  }
  return wire;
}
