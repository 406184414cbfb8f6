// Encrypted attachments (the SDK's parley.client.e2ee.files): a fresh AES-256-GCM key and
// nonce per file, the blob uploaded with ?encrypted=true, key/nonce/hash in the message.

import { DecryptionError, aesGcmDecrypt, aesGcmEncrypt, b64decode, b64encode, equal, randomBytes, sha256, utf8 } from "./primitives.js";

const FILE_AAD = utf8("parley-e2ee-v1 file");

/** → {blob, info}; key and nonce fresh unless given (test vectors only). */
export async function encryptFile(data, { key = null, nonce = null } = {}) {
  key = key || randomBytes(32);
  nonce = nonce || randomBytes(12);
  const blob = await aesGcmEncrypt(key, nonce, data, FILE_AAD);
  return { blob, info: { size: data.length, key: b64encode(key), nonce: b64encode(nonce), sha256: b64encode(await sha256(blob)) } };
}

export async function decryptFile(blob, info) {
  if (!equal(await sha256(blob), b64decode(info.sha256))) {
    throw new DecryptionError("the file is not the one the message names");
  }
  return aesGcmDecrypt(b64decode(info.key), b64decode(info.nonce), blob, FILE_AAD);
}
