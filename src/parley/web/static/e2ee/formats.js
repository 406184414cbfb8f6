// The byte formats both sides sign and check (docs/e2ee.md "Formats"; the server's and
// SDK's are in src/parley/e2ee/formats.py).

import { concat, uint64, utf8 } from "./primitives.js";

export const VERSION = 1;
export const ALG_SENDER_KEYS = "parley.senderkeys.v1";
export const ALG_PAIRWISE = "parley.olm.v1";

const ZERO = new Uint8Array([0]);

/** "parley-e2ee-v1 identity" 0 user_id 0 device_id 0 signing_key identity_key */
export function identityPayload(userId, deviceId, signingKey, identityKey) {
  return concat(utf8("parley-e2ee-v1 identity"), ZERO, utf8(userId), ZERO, utf8(deviceId), ZERO, signingKey, identityKey);
}

/** "parley-e2ee-v1 signed-prekey" 0 key_id (uint64 BE) public_key */
export function signedPrekeyPayload(keyId, publicKey) {
  return concat(utf8("parley-e2ee-v1 signed-prekey"), ZERO, uint64(keyId), publicKey);
}
