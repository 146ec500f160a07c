"""Secrets never reach a terminal or a log line: the one place that masks them.

Dependency-free, so the CLI's error path and the store can both use it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

# scheme://user:password@ anywhere in a text (user may be empty: redis://:pw@host).
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s@/]+@")
# Settings whose value is, or holds, a secret.
SECRET_SETTINGS = ("ANEFARM_BROKER_URL", "ANEFARM_DATABASE_URL", "ANEFARM_ARTIFACT_TOKEN")
SHORTEST_SECRET = 4  # a shorter one would also mask ordinary words ("p" in "postgresql")


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def mask(text: str, *, urls: bool = True) -> str:
    """``text`` without secrets: URL passwords, and any password or token of the
    environment's settings that a library quoted on its own. ``urls=False`` for text
    we wrote ourselves, whose URLs are examples (``redis://:PASSWORD@host``)."""
    if urls:
        text = mask_url_passwords(text)
    for secret in environment_secrets():
        text = text.replace(secret, "***")
    return text


def environment_secrets() -> list[str]:
    found: set[str] = set()
    for name in SECRET_SETTINGS:
        value = os.environ.get(name, "")
        if name.endswith("_TOKEN"):
            found.add(value)
            continue
        try:
            password = urlsplit(value).password
        except ValueError:
            continue
        if password:
            found |= {password, unquote(password)}
    # Longest first: one secret may contain another.
    return sorted((s for s in found if len(s) >= SHORTEST_SECRET), key=len, reverse=True)
