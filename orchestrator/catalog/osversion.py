"""iOS version strings ("18", "17.4", "16.7.8"), read in one place for the whole project.

Devices report dotted numbers, and the protocol admits nothing else (``protocol.Version``);
but people type versions (``--os "iOS 17.4"``, ``@16.7.8`` in a farm spec), model targets
are spelled ``iOS11.2``, and a device in bring-up says whatever lockdown says. So there is
one strict reader and two lenient ones, and every caller picks the one it means:

- :func:`release` / :func:`parse` / :func:`major_minor`: dotted numbers only, parsed by
  ``packaging.version``; anything else (a beta "17.4b2", "", "v17") is a ``ValueError``.
- :func:`leading`: the dotted numbers the text starts with ("iOS11.2", "17.4b2" → (17, 4));
  () when there are none. For labels that are not ours to validate.
- :func:`numeric_parts`: every dot-separated part, a non-numeric one counting as 0
  ("17.4b2" → (17, 0)); what device bring-up has always done with odd lockdown answers.

:func:`short` is the display form "17.4" of "17.4.1", as written (no parsing).

Tuples compare as Python tuples: (17,) < (17, 0). Callers that compare releases keep that.
This module imports nothing of the project, so every layer (agents included) may use it.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def parse(text: str) -> Version:
    """``"17.4"`` → ``Version("17.4")``; surrounding blanks are ignored; a ``ValueError``
    (``InvalidVersion``) for anything but dotted numbers."""
    if not DOTTED.fullmatch(text.strip()):
        raise InvalidVersion(f"{text!r} is not an OS version like 17.4")
    return Version(text)


def release(text: str) -> tuple[int, ...]:
    """``"16.7.8"`` → (16, 7, 8); ``"18"`` → (18,); a ``ValueError`` unless dotted numbers."""
    return parse(text).release


def major_minor(text: str) -> tuple[int, int]:
    """``"16.7.8"`` → (16, 7); ``"18"`` → (18, 0); only the first two parts are read, and
    they must be numbers (``ValueError`` otherwise)."""
    major, *rest = release(short(text))
    return major, rest[0] if rest else 0


def leading(text: str) -> tuple[int, ...]:
    """The dotted numbers ``text`` starts with, after an ``iOS`` prefix: ``"iOS11.2"`` →
    (11, 2), ``"17.4b2"`` → (17, 4); () if it does not start with a number."""
    match = DOTTED.match(text.removeprefix("iOS"))
    return release(match.group()) if match else ()


def numeric_parts(text: str) -> tuple[int, ...]:
    """Every dot-separated part, a non-numeric one as 0: ``"17.3.1"`` → (17, 3, 1),
    ``"17.4b2"`` → (17, 0), ``""`` → (0,). Never raises."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def short(text: str) -> str:
    """The first two dot-separated parts as written: ``"17.4.1"`` → ``"17.4"``."""
    return ".".join(text.split(".")[:2])
