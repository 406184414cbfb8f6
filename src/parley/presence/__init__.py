"""Presence storage (DESIGN §2 "Presence", "Scale-out"): how many sessions each user has on
each node, shared by every node, and which changes of a user's combined status that causes.

Beside ``bus/`` and built the same way: the :class:`~parley.presence.base.PresenceStore`
Protocol with its guarantees (``base``), the in-process store (``memory``) and its Redis twin
(``redis``), one contract suite for both (``tests/contract/test_presence_store.py``). The gateway's
``presence`` module uses a store; ``backends`` picks one.
"""
