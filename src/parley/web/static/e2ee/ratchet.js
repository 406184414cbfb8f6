// The Double Ratchet (Signal, rev. 1) §3 with §5.2's functions except ENCRYPT, which is
// AES-256-GCM — byte for byte the SDK's parley.client.e2ee.ratchet (docs/e2ee.md).
// The state is a plain object of Uint8Arrays, numbers and non-extractable CryptoKeys, so it
// goes into IndexedDB by structured clone with no private key ever exported.

import {
  DecryptionError, aesGcmDecrypt, aesGcmEncrypt, b64encode, concat, dh, hkdf, hmacSha256, uint32, utf8, x25519Generate,
} from "./primitives.js";

const RK_INFO = utf8("Parley Ratchet v1");
const MK_INFO = utf8("Parley Ratchet message keys v1");
const ZERO_SALT = new Uint8Array(32);
export const MAX_SKIP = 1000;
export const MAX_STORED = 2000;
export const HEADER_BYTES = 40;

export async function kdfRk(rk, dhOut) {
  const out = await hkdf(dhOut, { salt: rk, info: RK_INFO, length: 64 });
  return [out.slice(0, 32), out.slice(32)];
}

export async function kdfCk(ck) {
  return [await hmacSha256(ck, new Uint8Array([2])), await hmacSha256(ck, new Uint8Array([1]))];
}

export async function messageCipher(mk) {
  const out = await hkdf(mk, { salt: ZERO_SALT, info: MK_INFO, length: 44 });
  return [out.slice(0, 32), out.slice(32)];
}

export function encodeHeader({ dh: dhPublic, pn, n }) {
  return concat(dhPublic, uint32(pn), uint32(n));
}

export function decodeHeader(bytes) {
  if (bytes.length !== HEADER_BYTES) throw new DecryptionError("bad ratchet header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dh: bytes.slice(0, 32), pn: view.getUint32(32, false), n: view.getUint32(36, false) };
}

async function seal(mk, plaintext, ad) {
  const [key, nonce] = await messageCipher(mk);
  return aesGcmEncrypt(key, nonce, plaintext, ad);
}

async function open(mk, ciphertext, ad) {
  const [key, nonce] = await messageCipher(mk);
  return aesGcmDecrypt(key, nonce, ciphertext, ad);
}

const skipKey = (dhPublic, n) => `${b64encode(dhPublic)}:${n}`;

/** RatchetInitAlice(SK, SPK_B); dhs = {privateKey, publicKey} (fresh unless given). */
export async function initAlice(sk, bobDhPublic, dhs = null) {
  const pair = dhs || (await x25519Generate());
  const [rk, cks] = await kdfRk(sk, await dh(pair.privateKey, bobDhPublic));
  return { dhs: pair, dhr: bobDhPublic, rk, cks, ckr: null, ns: 0, nr: 0, pn: 0, skipped: new Map() };
}

/** RatchetInitBob(SK, SPK_B key pair). */
export function initBob(sk, bobDh) {
  return { dhs: bobDh, dhr: null, rk: sk, cks: null, ckr: null, ns: 0, nr: 0, pn: 0, skipped: new Map() };
}

/** → {header (40 bytes), body}; advances the state. */
export async function encrypt(state, plaintext, ad) {
  if (!state.cks) throw new DecryptionError("no sending chain yet: the other side must write first");
  const [cks, mk] = await kdfCk(state.cks);
  state.cks = cks;
  const header = encodeHeader({ dh: state.dhs.publicKey, pn: state.pn, n: state.ns });
  state.ns += 1;
  return { header, body: await seal(mk, plaintext, concat(ad, header)) };
}

/** Decrypts, or throws with the state unchanged (§3.5). */
export async function decrypt(state, headerBytes, ciphertext, ad) {
  const header = decodeHeader(headerBytes);
  const trial = structuredClone(state);
  const plaintext = await decryptInto(trial, header, headerBytes, ciphertext, ad);
  Object.assign(state, trial);
  return plaintext;
}

async function decryptInto(state, header, headerBytes, ciphertext, ad) {
  const fullAd = concat(ad, headerBytes);
  const key = skipKey(header.dh, header.n);
  const stored = state.skipped.get(key);
  if (stored) {
    state.skipped.delete(key);
    return open(stored, ciphertext, fullAd);
  }
  if (!state.dhr || b64encode(state.dhr) !== b64encode(header.dh)) {
    await skip(state, header.pn);
    await dhRatchet(state, header);
  }
  await skip(state, header.n);
  const [ckr, mk] = await kdfCk(state.ckr);
  state.ckr = ckr;
  state.nr += 1;
  return open(mk, ciphertext, fullAd);
}

async function skip(state, until) {
  if (state.nr + MAX_SKIP < until) throw new DecryptionError("too many skipped messages");
  if (state.ckr && state.dhr) {
    while (state.nr < until) {
      const [ckr, mk] = await kdfCk(state.ckr);
      state.ckr = ckr;
      state.skipped.set(skipKey(state.dhr, state.nr), mk);
      state.nr += 1;
    }
    // Maps keep insertion order: the oldest go first.
    while (state.skipped.size > MAX_STORED) state.skipped.delete(state.skipped.keys().next().value);
  }
}

async function dhRatchet(state, header) {
  state.pn = state.ns;
  state.ns = 0;
  state.nr = 0;
  state.dhr = header.dh;
  [state.rk, state.ckr] = await kdfRk(state.rk, await dh(state.dhs.privateKey, state.dhr));
  state.dhs = await x25519Generate();
  [state.rk, state.cks] = await kdfRk(state.rk, await dh(state.dhs.privateKey, state.dhr));
}
