// The key backup blob (the SDK's parley.client.e2ee.backup): PBKDF2-HMAC-SHA-256 from a
// recovery passphrase, AES-256-GCM over the JSON of the conversation keys.

import {
  DecryptionError, aesGcmDecrypt, aesGcmEncrypt, aesGcmOpened, aesGcmSealed, b64decode, b64encode, fromUtf8, pbkdf2, randomBytes, utf8,
} from "./primitives.js";

export const ITERATIONS = 600_000;
const AAD = utf8("parley-e2ee-v1 key backup");

export async function seal(passphrase, payload, { iterations = ITERATIONS, salt = null, nonce = null } = {}) {
  salt = salt || randomBytes(16);
  nonce = nonce || randomBytes(12);
  const key = await pbkdf2(passphrase, salt, iterations);
  const body = utf8(JSON.stringify(payload));
  const ciphertext = await aesGcmEncrypt(key, nonce, body, AAD);
  return JSON.stringify({ v: 1, kdf: "pbkdf2-sha256", iterations, salt: b64encode(salt), nonce: b64encode(nonce), ciphertext: b64encode(ciphertext) });
}

export async function unseal(passphrase, blob) {
  let outer;
  try {
    outer = JSON.parse(blob);
  } catch {
    throw new DecryptionError("not a key backup");
  }
  if (outer?.v !== 1 || outer.kdf !== "pbkdf2-sha256" || !Number.isSafeInteger(outer.iterations)) {
    throw new DecryptionError("unknown backup format");
  }
  let body;
  try {
    const key = await pbkdf2(passphrase, b64decode(outer.salt), outer.iterations);
    body = await aesGcmDecrypt(key, b64decode(outer.nonce), b64decode(outer.ciphertext), AAD);
  } catch (error) {
    // Bad base64, a zero or huge count, a wrong passphrase: all "this does not open".
    throw error instanceof DecryptionError ? error : new DecryptionError("not a key backup");
  }
  return JSON.parse(fromUtf8(body));
}

/**
 * The same blob under a remembered key (a non-extractable CryptoKey derived from the
 * passphrase with this salt and count): later backups need no passphrase.
 */
export async function sealWithKey(key, salt, iterations, payload) {
  const nonce = randomBytes(12);
  const ciphertext = await aesGcmSealed(key, nonce, utf8(JSON.stringify(payload)), AAD);
  return JSON.stringify({ v: 1, kdf: "pbkdf2-sha256", iterations, salt: b64encode(salt), nonce: b64encode(nonce), ciphertext: b64encode(ciphertext) });
}

/** Open a blob with a remembered key; null when the blob was made with another salt. */
export async function unsealWithKey(key, salt, blob) {
  const outer = JSON.parse(blob);
  if (outer?.v !== 1 || outer.salt !== b64encode(salt)) return null;
  const body = await aesGcmOpened(key, b64decode(outer.nonce), b64decode(outer.ciphertext), AAD);
  return JSON.parse(fromUtf8(body));
}

/** The salt and iteration count of a blob (to derive the key to remember). */
export function parameters(blob) {
  const outer = JSON.parse(blob);
  return { salt: b64decode(outer.salt), iterations: outer.iterations };
}
