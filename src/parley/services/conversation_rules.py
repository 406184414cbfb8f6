"""What a conversation may be: the limits the site sets, and the checks of names, slugs,
topics and visibility (DESIGN §6.3). Pure functions; the ``conversation_*`` services use them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from parley.errors import ValidationFailed

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MAX_NAME = 100
MAX_TOPIC = 500
ROLES = ("member", "admin", "owner")
# A public group is listed in the directory and anyone may join it (DESIGN §6.3).
VISIBILITIES = ("private", "public")


@dataclass(frozen=True, slots=True)
class ConversationLimits:
    max_group_members: int
    dm_requires_contact: bool
    # PARLEY_E2EE (DESIGN §6.1): "off" | "optional" | "required".
    e2ee: str = "optional"


def clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed.field("name", f"must be 1-{MAX_NAME} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationFailed.field("name", "must not contain control characters")
    return name


def clean_slug(raw: str) -> str:
    slug = raw.strip().lower()
    if not SLUG_PATTERN.fullmatch(slug):
        raise ValidationFailed.field(
            "slug", "must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )
    return slug


def clean_topic(raw: str) -> str:
    topic = unicodedata.normalize("NFC", raw).strip()
    if len(topic) > MAX_TOPIC:
        raise ValidationFailed.field("topic", f"must be at most {MAX_TOPIC} characters")
    return topic


def clean_visibility(raw: str) -> str:
    if raw not in VISIBILITIES:
        raise ValidationFailed.field("visibility", "must be 'private' or 'public'")
    return raw


def direct_key(user_a: str, user_b: str) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"
