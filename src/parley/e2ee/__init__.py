"""End-to-end encryption, the part the server and every client share (DESIGN §6.1).

``formats`` fixes the byte layouts: key and signature encodings, what an Ed25519 signature
covers, the envelope metadata of an encrypted message. The server checks shapes and
signatures of public keys with it; the SDK (``parley.client.e2ee``) builds and reads them.
``docs/e2ee.md`` describes them for other implementations (the browser's WebCrypto code).
"""
