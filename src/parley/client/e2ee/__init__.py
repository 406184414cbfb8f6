"""End-to-end encryption in the SDK (DESIGN §6.1, ``docs/e2ee.md``).

- ``primitives`` — the pyca ``cryptography`` calls used (all of them WebCrypto has too);
- ``x3dh`` and ``ratchet`` — Signal's X3DH and Double Ratchet, for ``pairwise`` channels
  between two devices (to-device messages only);
- ``sender_keys`` — the conversation cipher (a hash ratchet per sending device and epoch,
  AES-256-GCM, Ed25519-signed);
- ``device`` and ``store`` — this device's keys and state on disk (0600);
- ``engine`` — :class:`E2ee`, what ``ParleyClient.enable_e2ee`` wires in;
- ``safety`` — safety numbers; ``files`` — encrypted attachments; ``backup`` — the key
  backup.
"""
