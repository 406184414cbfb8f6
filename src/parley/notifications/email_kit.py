"""What every email Parley sends needs: the mailer, the link signer and absolute links."""

from __future__ import annotations

from dataclasses import dataclass

from parley.notifications.links import PublicLinks
from parley.notifications.mailer import Mailer
from parley.security.link_tokens import LinkSigner


@dataclass(frozen=True, slots=True)
class EmailKit:
    mailer: Mailer
    signer: LinkSigner
    links: PublicLinks
