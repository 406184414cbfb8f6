"""Conversations and membership: direct (one per pair) and group (roles, up to N members).

``Conversations`` is the one service the rest of Parley calls; each concept of it lives in
its own module, as a subclass of ``conversation_base.ConversationBase``:

- ``conversation_reading``: a user's conversations, one by id or slug, its members;
- ``conversation_encryption``: end-to-end encryption at creation, switched on, never off;
- ``conversation_creation``: direct conversations and groups;
- ``conversation_settings``: name, topic, slug, visibility, picture, archiving, deletion;
- ``conversation_membership``: adding, joining, removing, leaving, roles.

The limits and input checks they share are ``conversation_rules``.
"""

from __future__ import annotations

from parley.services.conversation_creation import ConversationCreation
from parley.services.conversation_membership import ConversationMembership
from parley.services.conversation_reading import ConversationReading
from parley.services.conversation_settings import ConversationSettings


class Conversations(ConversationReading, ConversationCreation, ConversationSettings, ConversationMembership):
    """Built once by the container from the database, the event sink, the site's
    ``ConversationLimits`` and the attachment URL signer (``ConversationBase.__init__``)."""
