// The only primitives end-to-end encryption uses (docs/e2ee.md), all from the browser's
// WebCrypto: X25519, Ed25519, HKDF-SHA-256, HMAC-SHA-256, SHA-256/512, AES-256-GCM and
// PBKDF2-HMAC-SHA-256. No third-party crypto code. Thin wrappers over Uint8Arrays and
// CryptoKeys, so the protocol modules read like the SDK's (src/parley/client/e2ee/).

const subtle = globalThis.crypto.subtle;

export class DecryptionError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecryptionError";
  }
}

// --- bytes

const encoder = new TextEncoder();

export function utf8(text) {
  return encoder.encode(text);
}

export function fromUtf8(bytes) {
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (text.length % 2 || /[^0-9a-f]/i.test(text)) throw new Error("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function uint32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

export function uint64(n) {
  // Key ids are at most 2^53 - 1 (docs/e2ee.md): exact as a JS number.
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

export function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// --- unpadded base64url, strict like parley.e2ee.formats: no padding, no other alphabet,
// canonical trailing bits only.

export class FormatError extends Error {}

export function b64encode(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new FormatError("not unpadded base64url");
  }
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const out = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (b64encode(out) !== text) throw new FormatError("non-canonical base64url");
  return out;
}

// --- X25519 and Ed25519 keys.
// Private keys made here are non-extractable; raw private bytes (test vectors, or state
// from another implementation) come in as PKCS#8: a fixed RFC 8410 prefix and the 32 bytes.

const PKCS8_PREFIX = {
  X25519: fromHex("302e020100300506032b656e04220420"),
  Ed25519: fromHex("302e020100300506032b657004220420"),
};
const USAGES = { X25519: ["deriveBits"], Ed25519: ["sign"] };

async function generate(name, extractable) {
  const pair = await subtle.generateKey({ name }, extractable, name === "X25519" ? ["deriveBits"] : ["sign", "verify"]);
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey };
}

/** A fresh X25519 key pair: {privateKey: CryptoKey, publicKey: 32 bytes}. */
export function x25519Generate(extractable = false) {
  return generate("X25519", extractable);
}

/** A fresh Ed25519 key pair: {privateKey: CryptoKey, publicKey: 32 bytes}. */
export function ed25519Generate(extractable = false) {
  return generate("Ed25519", extractable);
}

/** A key pair from 32 raw private bytes (imported extractable only to read its public half). */
export async function importPrivate(name, raw, extractable = false) {
  const pkcs8 = concat(PKCS8_PREFIX[name], raw);
  const readable = await subtle.importKey("pkcs8", pkcs8, { name }, true, USAGES[name]);
  const jwk = await subtle.exportKey("jwk", readable);
  const privateKey = extractable ? readable : await subtle.importKey("pkcs8", pkcs8, { name }, false, USAGES[name]);
  return { privateKey, publicKey: b64decode(jwk.x) };
}

/** The 32 raw private bytes of an extractable key (ratchet keys kept in state). */
export async function exportPrivate(privateKey) {
  const jwk = await subtle.exportKey("jwk", privateKey);
  return b64decode(jwk.d);
}

export async function dh(privateKey, publicBytes) {
  let publicKey;
  try {
    publicKey = await subtle.importKey("raw", publicBytes, { name: "X25519" }, true, []);
    // WebCrypto refuses an all-zero result (a low-order public key), as the SDK does.
    return new Uint8Array(await subtle.deriveBits({ name: "X25519", public: publicKey }, privateKey, 256));
  } catch (error) {
    throw new DecryptionError(`bad X25519 public key: ${error.message}`);
  }
}

export async function sign(privateKey, data) {
  return new Uint8Array(await subtle.sign({ name: "Ed25519" }, privateKey, data));
}

export async function verify(publicBytes, signature, data) {
  try {
    const key = await subtle.importKey("raw", publicBytes, { name: "Ed25519" }, true, ["verify"]);
    return await subtle.verify({ name: "Ed25519" }, key, signature, data);
  } catch {
    return false;
  }
}

// --- hashing and key derivation

export async function hkdf(ikm, { salt, info, length }) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

export async function hmacSha256(keyBytes, data) {
  const key = await subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", key, data));
}

/** HMAC-SHA-256 under a CryptoKey the caller holds (the non-extractable blind-index key). */
export async function hmacSha256Keyed(key, data) {
  return new Uint8Array(await subtle.sign("HMAC", key, data));
}

export async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

export async function sha512(data) {
  return new Uint8Array(await subtle.digest("SHA-512", data));
}

export async function pbkdf2(passphrase, salt, iterations) {
  const key = await subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

/** The same PBKDF2 key as a non-extractable AES-GCM CryptoKey (the remembered backup key). */
export async function pbkdf2AesKey(passphrase, salt, iterations) {
  const key = await subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

// --- AES-256-GCM (ciphertext || 16-byte tag, as pyca's AESGCM)

async function aesKey(raw, usage) {
  return subtle.importKey("raw", raw, "AES-GCM", false, [usage]);
}

export async function aesGcmEncrypt(key, nonce, plaintext, aad) {
  const k = await aesKey(key, "encrypt");
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, plaintext));
}

export async function aesGcmDecrypt(key, nonce, ciphertext, aad) {
  const k = await aesKey(key, "decrypt");
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, ciphertext));
  } catch {
    throw new DecryptionError("the ciphertext does not authenticate");
  }
}

/** AES-GCM under a CryptoKey the caller holds (the non-extractable at-rest key). */
export async function aesGcmSealed(key, nonce, plaintext, aad) {
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, plaintext));
}

export async function aesGcmOpened(key, nonce, ciphertext, aad) {
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, ciphertext));
  } catch {
    throw new DecryptionError("the stored state does not authenticate");
  }
}
