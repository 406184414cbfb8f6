// Sender keys, the conversation cipher (the SDK's parley.client.e2ee.sender_keys;
// docs/e2ee.md "Conversation messages"): a hash-ratcheted chain key per sending device and
// epoch, AES-256-GCM, and an Ed25519 signature by the session's key (its session_id).

import { ALG_SENDER_KEYS, VERSION } from "./formats.js";
import {
  DecryptionError, aesGcmDecrypt, aesGcmEncrypt, b64decode, b64encode, concat, ed25519Generate, hkdf, hmacSha256,
  randomBytes, sign, uint32, utf8, verify,
} from "./primitives.js";

const MESSAGE_INFO = utf8("Parley sender key message v1");
const AAD_LABEL = utf8("parley-e2ee-v1 message\0");
const ZERO = new Uint8Array([0]);
const SIGNATURE_BYTES = 64;
export const MAX_FORWARD = 20_000;
export const MAX_SEEN = 5000;

export class ReplayError extends DecryptionError {}

/** (next chain key, message key) */
export async function chainStep(ck) {
  return [await hmacSha256(ck, new Uint8Array([2])), await hmacSha256(ck, new Uint8Array([1]))];
}

export async function messageCipher(mk) {
  const out = await hkdf(mk, { salt: new Uint8Array(32), info: MESSAGE_INFO, length: 44 });
  return [out.slice(0, 32), out.slice(32)];
}

export function aad(conversationId, senderUserId, senderDeviceId, sessionId, index) {
  return concat(AAD_LABEL, utf8(conversationId), ZERO, utf8(senderUserId), ZERO, utf8(senderDeviceId), ZERO, sessionId, uint32(index));
}

/** A new outbound session: signing = {privateKey, publicKey} and chainKey fresh unless given. */
export async function newOutbound(conversationId, { signing = null, chainKey = null } = {}) {
  return {
    conversationId,
    signing: signing || (await ed25519Generate()),
    chainKey: chainKey || randomBytes(32),
    index: 0,
    createdAt: Date.now() / 1000,
    sharedWith: [],
    members: [],
  };
}

/** → {ciphertext, e2ee}: what a send carries instead of `content`; advances the chain. */
export async function encrypt(session, senderUserId, senderDeviceId, plaintext) {
  const index = session.index;
  const [next, mk] = await chainStep(session.chainKey);
  const [key, nonce] = await messageCipher(mk);
  const sessionRaw = session.signing.publicKey;
  const associated = aad(session.conversationId, senderUserId, senderDeviceId, sessionRaw, index);
  const body = await aesGcmEncrypt(key, nonce, plaintext, associated);
  const signature = await sign(session.signing.privateKey, concat(associated, body));
  session.chainKey = next;
  session.index = index + 1;
  const e2ee = { v: VERSION, alg: ALG_SENDER_KEYS, sender_device_id: senderDeviceId, session_id: b64encode(sessionRaw), index };
  return { ciphertext: b64encode(concat(body, signature)), e2ee };
}

/** What members receive over the pairwise channels: the chain at its current index. */
export function exportOutbound(session) {
  return {
    conversation_id: session.conversationId,
    session_id: b64encode(session.signing.publicKey),
    index: session.index,
    chain_key: b64encode(session.chainKey),
  };
}

export function inboundFromExport(senderUserId, senderDeviceId, shared) {
  const sessionRaw = b64decode(shared.session_id);
  if (sessionRaw.length !== 32) throw new DecryptionError("session_id is not a 32-byte key");
  return {
    conversationId: String(shared.conversation_id),
    senderUserId,
    senderDeviceId,
    sessionId: String(shared.session_id),
    firstIndex: Number(shared.index),
    firstChainKey: b64decode(shared.chain_key),
    seen: new Map(), // index -> message id (replay detection)
  };
}

/** The plaintext bytes of an encrypted message (envelope = its `e2ee`). */
export async function decrypt(session, envelope, ciphertext, messageId = null) {
  const index = Number(envelope.index);
  const data = b64decode(ciphertext);
  if (data.length < SIGNATURE_BYTES + 16) throw new DecryptionError("ciphertext too short");
  const body = data.slice(0, -SIGNATURE_BYTES);
  const signature = data.slice(-SIGNATURE_BYTES);
  const sessionRaw = b64decode(session.sessionId);
  const associated = aad(session.conversationId, session.senderUserId, session.senderDeviceId, sessionRaw, index);
  if (!(await verify(sessionRaw, signature, concat(associated, body)))) {
    throw new DecryptionError("the signature does not verify");
  }
  if (index < session.firstIndex) throw new DecryptionError("sent before this device received the key");
  if (index - session.firstIndex > MAX_FORWARD) throw new DecryptionError("index too far ahead");
  const earlier = session.seen.get(index);
  if (messageId !== null && earlier !== undefined && earlier !== messageId) {
    throw new ReplayError(`index ${index} was already read as message ${earlier}`);
  }
  let ck = session.firstChainKey;
  for (let i = session.firstIndex; i < index; i++) [ck] = await chainStep(ck);
  const [, mk] = await chainStep(ck);
  const [key, nonce] = await messageCipher(mk);
  const plaintext = await aesGcmDecrypt(key, nonce, body, associated);
  if (messageId !== null) {
    session.seen.set(index, messageId);
    while (session.seen.size > MAX_SEEN) session.seen.delete(session.seen.keys().next().value);
  }
  return plaintext;
}
