// Run in the page by tests/test_web_browser_e2ee.py (page.evaluate): every vector of
// tests/e2ee_vectors.json through the web client's WebCrypto code. Produces the values the
// SDK published (same inputs, same bytes) and reads the receiving side; returns
// {name: value} for the test to compare with the JSON.
async (vectors) => {
  const S = "/static/e2ee/";
  const p = await import(S + "primitives.js");
  const formats = await import(S + "formats.js");
  const x3dh = await import(S + "x3dh.js");
  const ratchet = await import(S + "ratchet.js");
  const pairwise = await import(S + "pairwise.js");
  const senderKeys = await import(S + "sender_keys.js");
  const files = await import(S + "files.js");
  const backup = await import(S + "backup.js");
  const safety = await import(S + "safety.js");
  const out = {};
  const refused = (f) => f().then(() => false, () => true);

  vectors.base64url.forEach((c, i) => {
    out[`b64.encode.${i}`] = p.b64encode(p.fromHex(c.hex));
    out[`b64.decode.${i}`] = p.hex(p.b64decode(c.encoded));
  });
  for (const bad of ["A", "AB=", "A+B/", "QR"]) out[`b64.refused.${bad}`] = await refused(async () => p.b64decode(bad));

  const keys = {};
  for (const [name, d] of Object.entries(vectors.devices)) {
    const k = (keys[name] = {
      signing: await p.importPrivate("Ed25519", p.fromHex(d.signing_private)),
      identity: await p.importPrivate("X25519", p.fromHex(d.identity_private)),
      spk: await p.importPrivate("X25519", p.fromHex(d.signed_prekey_private)),
      otk: await p.importPrivate("X25519", p.fromHex(d.one_time_prekey_private)),
    });
    const idPayload = formats.identityPayload(d.user_id, d.device_id, k.signing.publicKey, k.identity.publicKey);
    const spkPayload = formats.signedPrekeyPayload(d.signed_prekey.key_id, k.spk.publicKey);
    out[`devices.${name}.signing_key`] = p.b64encode(k.signing.publicKey);
    out[`devices.${name}.identity_key`] = p.b64encode(k.identity.publicKey);
    out[`devices.${name}.identity_payload`] = p.hex(idPayload);
    out[`devices.${name}.identity_signature`] = p.b64encode(await p.sign(k.signing.privateKey, idPayload));
    out[`devices.${name}.signed_prekey_public`] = p.b64encode(k.spk.publicKey);
    out[`devices.${name}.signed_prekey_payload`] = p.hex(spkPayload);
    out[`devices.${name}.signed_prekey_signature`] = p.b64encode(await p.sign(k.signing.privateKey, spkPayload));
    out[`devices.${name}.one_time_prekey_public`] = p.b64encode(k.otk.publicKey);
    const bundle = x3dh.parseBundle({ ...d, one_time_prekey: d.one_time_prekey });
    out[`devices.${name}.bundle_verifies`] = await x3dh.verifyBundle(bundle).then(() => true, () => false);
    const forged = { ...bundle, signedPrekey: k.otk.publicKey };
    out[`devices.${name}.forged_bundle_refused`] = await refused(() => x3dh.verifyBundle(forged));
  }

  const bobRaw = vectors.devices.bob;
  for (const [i, c] of vectors.x3dh.cases.entries()) {
    const bundle = x3dh.parseBundle({ ...bobRaw, one_time_prekey: c.one_time_prekey_used ? bobRaw.one_time_prekey : null });
    const ephemeral = await p.importPrivate("X25519", p.fromHex(c.ephemeral_private));
    const started = await x3dh.initiate(keys.alice.identity, bundle, ephemeral);
    out[`x3dh.${i}.ephemeral_public`] = p.b64encode(started.ephemeralPublic);
    out[`x3dh.${i}.initiator.shared_key`] = p.hex(started.sharedKey);
    out[`x3dh.${i}.initiator.associated_data`] = p.hex(started.ad);
    const responded = await x3dh.respond(keys.bob.identity, keys.bob.spk, c.one_time_prekey_used ? keys.bob.otk : null,
      keys.alice.identity.publicKey, p.b64decode(c.ephemeral_public));
    out[`x3dh.${i}.responder.shared_key`] = p.hex(responded.sharedKey);
    out[`x3dh.${i}.responder.associated_data`] = p.hex(responded.ad);
  }

  const dr = vectors.double_ratchet;
  const [rk, ck] = await ratchet.kdfRk(p.fromHex(dr.kdf_rk.rk), p.fromHex(dr.kdf_rk.dh_out));
  out["ratchet.kdf_rk.new_rk"] = p.hex(rk);
  out["ratchet.kdf_rk.ck"] = p.hex(ck);
  const [nextCk, mk] = await ratchet.kdfCk(p.fromHex(dr.kdf_ck.ck));
  out["ratchet.kdf_ck.next_ck"] = p.hex(nextCk);
  out["ratchet.kdf_ck.mk"] = p.hex(mk);
  const [key, nonce] = await ratchet.messageCipher(p.fromHex(dr.message_cipher.mk));
  out["ratchet.message_cipher.key"] = p.hex(key);
  out["ratchet.message_cipher.nonce"] = p.hex(nonce);

  // Alice produces the pairwise messages; Bob reads them.
  const pw = vectors.pairwise;
  const ephemeral = await p.importPrivate("X25519", p.fromHex(vectors.x3dh.cases[0].ephemeral_private));
  const ratchetKey = await p.importPrivate("X25519", p.fromHex(pw.ratchet_private));
  const alice = await pairwise.initiate(keys.alice.identity, x3dh.parseBundle(bobRaw), { ephemeral, ratchetKey });
  let bob = null;
  for (const [i, m] of pw.messages.entries()) {
    out[`pairwise.${i}.ciphertext`] = await pairwise.encrypt(alice, keys.alice.identity.publicKey, p.utf8(m.plaintext));
    const wire = pairwise.parseWire(m.ciphertext);
    bob ||= await pairwise.respond(keys.bob.identity, keys.bob.spk, keys.bob.otk,
      p.b64decode(wire.sender_key), p.b64decode(wire.prekey.ephemeral_key));
    out[`pairwise.${i}.decrypted`] = p.fromUtf8(await pairwise.decrypt(bob, wire));
  }
  // A tampered message fails and leaves Bob's session able to read on.
  const tampered = pairwise.parseWire(pw.messages[1].ciphertext);
  tampered.body = p.b64encode(p.b64decode(tampered.body).map((b, j) => (j === 0 ? b ^ 1 : b)));
  out["pairwise.replay_refused"] = await refused(() => pairwise.decrypt(bob, pairwise.parseWire(pw.messages[1].ciphertext)));
  out["pairwise.tamper_refused"] = await refused(() => pairwise.decrypt(bob, tampered));

  // The sender produces the group messages; a member reads them.
  const sk = vectors.sender_keys;
  const signing = await p.importPrivate("Ed25519", p.fromHex(sk.signing_private));
  const outbound = await senderKeys.newOutbound(sk.conversation_id, { signing, chainKey: p.b64decode(sk.shared.chain_key) });
  out["sender_keys.shared"] = senderKeys.exportOutbound(outbound);
  const inbound = senderKeys.inboundFromExport(sk.sender_user_id, sk.sender_device_id, sk.shared);
  for (const [i, m] of sk.messages.entries()) {
    const sent = await senderKeys.encrypt(outbound, sk.sender_user_id, sk.sender_device_id, p.utf8(m.plaintext));
    out[`sender_keys.${i}.ciphertext`] = sent.ciphertext;
    out[`sender_keys.${i}.e2ee`] = sent.e2ee;
    out[`sender_keys.${i}.aad`] = p.hex(senderKeys.aad(sk.conversation_id, sk.sender_user_id, sk.sender_device_id,
      p.b64decode(m.e2ee.session_id), m.e2ee.index));
    out[`sender_keys.${i}.decrypted`] = p.fromUtf8(await senderKeys.decrypt(inbound, m.e2ee, m.ciphertext, `m${i}`));
  }
  out["sender_keys.replay_refused"] = await refused(() =>
    senderKeys.decrypt(inbound, sk.messages[0].e2ee, sk.messages[0].ciphertext, "another"));
  out["sender_keys.wrong_index_refused"] = await refused(() =>
    senderKeys.decrypt(inbound, { ...sk.messages[0].e2ee, index: 1 }, sk.messages[0].ciphertext));

  const f = vectors.file;
  const encrypted = await files.encryptFile(p.fromHex(f.plaintext_hex), { key: p.b64decode(f.info.key), nonce: p.b64decode(f.info.nonce) });
  out["file.blob_hex"] = p.hex(encrypted.blob);
  out["file.info"] = encrypted.info;
  out["file.decrypted_hex"] = p.hex(await files.decryptFile(p.fromHex(f.blob_hex), f.info));

  const kb = vectors.key_backup;
  const outer = JSON.parse(kb.blob);
  out["key_backup.blob"] = await backup.seal(kb.passphrase, kb.payload,
    { iterations: outer.iterations, salt: p.b64decode(outer.salt), nonce: p.b64decode(outer.nonce) });
  out["key_backup.payload"] = await backup.unseal(kb.passphrase, kb.blob);
  out["key_backup.wrong_passphrase_refused"] = await refused(() => backup.unseal("not the passphrase", kb.blob));

  const sn = vectors.safety_number;
  out["safety_number.ab"] = await safety.safetyNumber(sn.user_a, sn.signing_keys_a.map(p.b64decode), sn.user_b, sn.signing_keys_b.map(p.b64decode));
  out["safety_number.ba"] = await safety.safetyNumber(sn.user_b, sn.signing_keys_b.map(p.b64decode), sn.user_a, sn.signing_keys_a.map(p.b64decode));
  return out;
}
