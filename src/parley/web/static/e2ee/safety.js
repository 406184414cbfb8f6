// Safety numbers (the SDK's parley.client.e2ee.safety): each user's sorted device signing
// keys hashed 5,200 times with SHA-512 into 30 digits; the pair's number is both halves,
// lower user id first, so both sides show the same 60 digits.

import { concat, sha512, utf8 } from "./primitives.js";

const LABEL = utf8("parley-e2ee-v1 safety number\0");
const ITERATIONS = 5200;

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export async function fingerprint(userId, signingKeys) {
  const material = concat(...[...signingKeys].sort(compareBytes));
  let digest = concat(LABEL, material, utf8(userId));
  for (let i = 0; i < ITERATIONS; i++) digest = await sha512(concat(digest, material));
  let digits = "";
  for (let i = 0; i < 30; i += 5) {
    let value = 0n;
    for (const byte of digest.slice(i, i + 5)) value = (value << 8n) | BigInt(byte);
    digits += String(value % 100000n).padStart(5, "0");
  }
  return digits;
}

export async function safetyNumber(userA, keysA, userB, keysB) {
  const halves = [
    [userA, await fingerprint(userA, keysA)],
    [userB, await fingerprint(userB, keysB)],
  ].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : 1));
  const digits = halves[0][1] + halves[1][1];
  return digits.match(/.{5}/g).join(" ");
}
