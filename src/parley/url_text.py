"""What a setting's URL may hold and what an error may say of it.

An error about a URL must not quote it: a malformed one may put a password where the scheme
belongs (``user:secret://host``). :func:`shown_scheme` names the scheme only when the text
before ``://`` looks like one (RFC 3986). :func:`check_url_text` refuses control characters
(a NUL byte passed the settings and failed at the first connection instead).
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown_scheme(url: str) -> str:
    """The URL's scheme as an error may show it: ``'redis'``, or a description."""
    if "://" not in url:
        return "no scheme"
    scheme = url.partition("://")[0].lower()
    return repr(scheme) if _SCHEME.fullmatch(scheme) else "not a URL"


def check_url_text(url: str) -> None:
    """ValueError for a control character (NUL, newline...) anywhere in ``url``."""
    if _CONTROL.search(url):
        raise ValueError("must not contain control characters (a NUL byte, a line break...)")
