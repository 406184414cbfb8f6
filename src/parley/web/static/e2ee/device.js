// This browser's device (the SDK's parley.client.e2ee.device): an Ed25519 signing key, an
// X25519 identity key, a weekly signed prekey (two previous ones kept) and batches of
// one-time prekeys. Private keys are generated non-extractable; the server gets the public
// halves only (PUT /api/v1/devices/{id}/keys).

import { identityPayload, signedPrekeyPayload } from "./formats.js";
import { b64encode, ed25519Generate, hex, randomBytes, sign, x25519Generate } from "./primitives.js";

export const PREKEY_BATCH = 50;
export const LOW_WATERMARK = 20;
const SIGNED_PREKEY_SECONDS = 7 * 86400;
const KEEP_OLD_SIGNED_PREKEYS = 2;

export function newDeviceId() {
  return "WB" + hex(randomBytes(8)).toUpperCase();
}

export async function create(userId, deviceId = newDeviceId()) {
  return {
    version: 1,
    userId,
    deviceId,
    signing: await ed25519Generate(),
    identity: await x25519Generate(),
    signedPrekeys: {}, // key id -> {privateKey, publicKey}
    signedPrekeyId: 0,
    signedPrekeyAt: 0,
    oneTimePrekeys: {}, // key id -> {privateKey, publicKey}
    nextPrekeyId: 1,
    uploaded: false,
    pairwise: {}, // "user|device" -> [session, ...] (most recent first)
    inbound: {}, // conversation|user|device|session -> inbound sender-key session
    outbound: {}, // conversation id -> outbound sender-key session
    knownDevices: {}, // "user|device" -> {signing_key, identity_key}: trust on first use
    processed: [], // to-device ids already applied (delivery is at least once)
  };
}

export async function identityKeys(state) {
  const payload = identityPayload(state.userId, state.deviceId, state.signing.publicKey, state.identity.publicKey);
  return {
    signing_key: b64encode(state.signing.publicKey),
    identity_key: b64encode(state.identity.publicKey),
    signature: b64encode(await sign(state.signing.privateKey, payload)),
  };
}

export async function signedPrekey(state) {
  const keyId = state.signedPrekeyId;
  const publicKey = state.signedPrekeys[keyId].publicKey;
  const signature = await sign(state.signing.privateKey, signedPrekeyPayload(keyId, publicKey));
  return { key_id: keyId, public_key: b64encode(publicKey), signature: b64encode(signature) };
}

/** A new signed prekey when there is none or it is a week old; true when rotated. */
export async function rotateSignedPrekeyIfDue(state, now = Date.now() / 1000) {
  if (state.signedPrekeyId && now - state.signedPrekeyAt < SIGNED_PREKEY_SECONDS) return false;
  const keyId = state.signedPrekeyId + 1;
  state.signedPrekeys[keyId] = await x25519Generate();
  const ids = Object.keys(state.signedPrekeys).map(Number).sort((a, b) => a - b);
  for (const old of ids.slice(0, -1 - KEEP_OLD_SIGNED_PREKEYS)) delete state.signedPrekeys[old];
  state.signedPrekeyId = keyId;
  state.signedPrekeyAt = now;
  return true;
}

/** `count` fresh one-time prekeys; their private halves are kept in the state. */
export async function generateOneTimePrekeys(state, count) {
  const fresh = [];
  for (let i = 0; i < count; i++) {
    const keyId = state.nextPrekeyId++;
    const pair = await x25519Generate();
    state.oneTimePrekeys[keyId] = pair;
    fresh.push({ key_id: keyId, public_key: b64encode(pair.publicKey) });
  }
  return fresh;
}
