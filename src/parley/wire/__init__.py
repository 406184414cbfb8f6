"""The vocabulary of the socket protocol, defined once, below every other layer.

``events`` names every event a server pushes (:class:`~parley.wire.events.EventType`) with
its typed payload and whether its ``data.seq`` is a stream position; ``codes`` holds the
close codes and the protocol's own error codes. Services emit ``EventType`` members, the
gateway pushes them, and ``parley protocol-schema`` writes them — with the frames and every
method's params from ``gateway`` — to ``docs/protocol.schema.json`` and to the web client's
``static/protocol.js``. The web client and the SDK read their event sets (which events
carry a seq, the close codes they react to) from there, never restating them.

How a feature adds to the protocol (DESIGN §6), in one place each:

- **an event**: a member of ``EventType``, its payload ``TypedDict`` and its row in
  ``EVENTS`` (``wire/events.py``; a test fails when a member has no row). Services emit
  ``Event(EventType.X, payload, ...)``.
- **a method**: its params model (a ``CallParams`` in ``gateway/protocol.py``), its handler
  on ``Handlers`` and its row in ``METHODS`` (``gateway/handlers.py``): that one row is both
  the validation and the dispatch.
- **a close or error code**: a member of ``CloseCode`` / ``ErrorCode`` (``wire/codes.py``).

Then run ``make protocol`` (``parley protocol-schema``) and commit the regenerated
``docs/protocol.schema.json`` and ``web/static/protocol.js``: ``tests/integration/test_protocol_schema.py``
fails while they are stale. ``docs/protocol.md`` stays the prose for humans.
"""
