// Encrypted attachments in the browser (docs/e2ee.md "Encrypted attachments"): a picked file
// is sealed here (files.js) and uploaded as an opaque blob; an image also gets a small JPEG
// thumbnail, sealed and uploaded the same way. What the message carries (inside its
// ciphertext) is the description; reading decrypts the bytes into a blob: URL.

import { api } from "../api.js";
import { decryptFile, encryptFile } from "./files.js";
import { DecryptionError, b64decode } from "./primitives.js";

const THUMB_MAX = 320;
const THUMB_TYPE = "image/jpeg";
const THUMB_QUALITY = 0.8;
const MAX_CACHED = 64;

const cache = new Map(); // "id:sha256" -> Promise<blob: URL>

async function sealAndUpload(bytes, { onProgress, signal } = {}) {
  const { blob, info } = await encryptFile(bytes);
  const file = new File([blob], "encrypted.bin", { type: "application/octet-stream" });
  const attachment = await api.upload(file, { onProgress, signal, encrypted: true });
  return { attachment, info: { id: attachment.id, ...info } };
}

/** A JPEG at most THUMB_MAX on its longer side, or null when the browser can't decode it. */
async function makeThumbnail(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return null; // not an image this browser decodes: sent as a plain file
  }
  const scale = Math.min(1, THUMB_MAX / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, width, height);
  const blob = await canvas.convertToBlob({ type: THUMB_TYPE, quality: THUMB_QUALITY });
  const size = { width: bitmap.width, height: bitmap.height };
  bitmap.close();
  return { bytes: new Uint8Array(await blob.arrayBuffer()), width, height, original: size };
}

/**
 * Seal and upload a picked file → {attachment (the server's), ids (to attach: the file and
 * its thumbnail), description (for the encrypted message)}.
 */
export async function uploadEncrypted(file, { onProgress, signal } = {}) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const contentType = file.type || "application/octet-stream";
  const { attachment, info } = await sealAndUpload(bytes, { onProgress, signal });
  const description = { ...info, name: file.name || "file", content_type: contentType };
  const ids = [attachment.id];
  if (contentType.startsWith("image/")) {
    const thumb = await makeThumbnail(file);
    if (thumb) {
      const sealed = await sealAndUpload(thumb.bytes, { signal });
      description.width = thumb.original.width;
      description.height = thumb.original.height;
      description.thumbnail = { ...sealed.info, content_type: THUMB_TYPE, width: thumb.width, height: thumb.height };
      ids.push(sealed.attachment.id);
    }
  }
  return { attachment, ids, description };
}

/** The attachment descriptions of a decrypted payload that have the fields needed to open them. */
export function validDescriptions(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((a) => a && typeof a === "object" && typeof a.id === "string");
}

/** Is this description's key material well formed? (Bad input is "can't decrypt", never a crash.) */
function checkKeys(info) {
  try {
    if (b64decode(info.key).length !== 32 || b64decode(info.nonce).length !== 12 || b64decode(info.sha256).length !== 32) {
      throw new DecryptionError("bad key sizes");
    }
  } catch {
    throw new DecryptionError("The attachment's key is malformed");
  }
}

/** A blob: URL of the decrypted bytes (downloaded and decrypted once per page). */
export function decryptedUrl(info, contentType = info.content_type) {
  const slot = `${info.id}:${info.sha256}`;
  if (!cache.has(slot)) {
    const job = (async () => {
      checkKeys(info);
      const plain = await decryptFile(await api.attachmentBytes(info.id), info);
      const type = typeof contentType === "string" && /^[\w.+-]+\/[\w.+-]+$/.test(contentType) ? contentType : "application/octet-stream";
      return URL.createObjectURL(new Blob([plain], { type }));
    })();
    job.catch(() => cache.delete(slot)); // a failure may be retried later
    cache.set(slot, job);
    while (cache.size > MAX_CACHED) {
      const [oldest, url] = cache.entries().next().value;
      cache.delete(oldest);
      url.then((u) => URL.revokeObjectURL(u), () => {});
    }
  }
  return cache.get(slot);
}
