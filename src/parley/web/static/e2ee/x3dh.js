// X3DH (Signal's "The X3DH Key Agreement Protocol", rev. 1) with X25519 and SHA-256, as the
// SDK's parley.client.e2ee.x3dh: the signed prekey is signed by the device's Ed25519 key
// (WebCrypto has no XEdDSA), and a bundle is used only when both signatures verify.

import { identityPayload, signedPrekeyPayload } from "./formats.js";
import { b64decode, concat, dh, hkdf, utf8, verify, x25519Generate } from "./primitives.js";

const INFO = utf8("Parley X3DH v1");
const F = new Uint8Array(32).fill(0xff); // §2.2: the KDF input never starts like a key
const SALT = new Uint8Array(32);

export class BundleError extends Error {}

/** A claimed bundle (POST /keys/claim) as bytes. */
export function parseBundle(raw) {
  const otk = raw.one_time_prekey;
  return {
    userId: String(raw.user_id),
    deviceId: String(raw.device_id),
    signingKey: b64decode(raw.identity_keys.signing_key),
    identityKey: b64decode(raw.identity_keys.identity_key),
    identitySignature: b64decode(raw.identity_keys.signature),
    signedPrekeyId: Number(raw.signed_prekey.key_id),
    signedPrekey: b64decode(raw.signed_prekey.public_key),
    signedPrekeySignature: b64decode(raw.signed_prekey.signature),
    oneTimePrekeyId: otk ? Number(otk.key_id) : null,
    oneTimePrekey: otk ? b64decode(otk.public_key) : null,
  };
}

export async function verifyBundle(bundle) {
  const identity = identityPayload(bundle.userId, bundle.deviceId, bundle.signingKey, bundle.identityKey);
  if (!(await verify(bundle.signingKey, bundle.identitySignature, identity))) {
    throw new BundleError("the identity key signature does not verify");
  }
  const prekey = signedPrekeyPayload(bundle.signedPrekeyId, bundle.signedPrekey);
  if (!(await verify(bundle.signingKey, bundle.signedPrekeySignature, prekey))) {
    throw new BundleError("the signed prekey signature does not verify");
  }
}

export function kdf(dhs) {
  return hkdf(concat(F, ...dhs), { salt: SALT, info: INFO, length: 32 });
}

/**
 * Alice's side (§3.3): verify the bundle, derive SK with an ephemeral key (fresh unless
 * given: test vectors). identity = {privateKey, publicKey}. → {sharedKey, ad, ephemeralPublic}
 */
export async function initiate(identity, bundle, ephemeral = null) {
  await verifyBundle(bundle);
  const ek = ephemeral || (await x25519Generate());
  const dhs = [
    await dh(identity.privateKey, bundle.signedPrekey),
    await dh(ek.privateKey, bundle.identityKey),
    await dh(ek.privateKey, bundle.signedPrekey),
  ];
  if (bundle.oneTimePrekey) dhs.push(await dh(ek.privateKey, bundle.oneTimePrekey));
  return {
    sharedKey: await kdf(dhs),
    ad: concat(identity.publicKey, bundle.identityKey),
    ephemeralPublic: ek.publicKey,
  };
}

/** Bob's side (§3.4): the same SK and AD from his private keys. → {sharedKey, ad} */
export async function respond(identity, signedPrekey, oneTimePrekey, theirIdentity, theirEphemeral) {
  const dhs = [
    await dh(signedPrekey.privateKey, theirIdentity),
    await dh(identity.privateKey, theirEphemeral),
    await dh(signedPrekey.privateKey, theirEphemeral),
  ];
  if (oneTimePrekey) dhs.push(await dh(oneTimePrekey.privateKey, theirEphemeral));
  return { sharedKey: await kdf(dhs), ad: concat(theirIdentity, identity.publicKey) };
}
