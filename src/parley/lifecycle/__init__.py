"""The data lifecycle (DESIGN §6.4; docs/lifecycle.md): what Parley deletes and when, and
what it hands out.

- ``retention``: the site policy and per-conversation overrides, the legal hold, and the
  sweep that deletes expired messages (optionally archiving them first, ``archive``).
- ``exports``: personal and conversation exports, built as jobs into ZIP archives.
- ``erasure``: deleting an account (the username stays reserved).
- ``backup``: ``parley backup`` / ``parley restore``.

Everything here runs on top of ``services`` and ``store``; nothing knows about HTTP.
"""
