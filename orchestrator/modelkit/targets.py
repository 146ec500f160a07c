"""Core ML specification versions and the oldest iOS that runs each.

One table for both sides: the coordinator names a model's minimum deployment target in
its inventory, and an agent refuses to run a model on a device whose iOS is too old
(a *model* failure on that device, "needs iOS 16, device runs 12.0"). Agents stay light,
so this module imports neither coremltools nor protobuf: ``read_spec_version`` reads the
one field it needs straight from the protobuf wire format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from orchestrator.catalog.osversion import leading
from orchestrator.errors import ModelError

# specificationVersion → the iOS release whose Core ML introduced it (coremltools'
# _SPECIFICATION_VERSION_... constants and ct.target).
TARGETS = {1: "iOS11", 2: "iOS11.2", 3: "iOS12", 4: "iOS13", 5: "iOS14", 6: "iOS15",
           7: "iOS16", 8: "iOS17", 9: "iOS18", 10: "iOS26"}  # fmt: skip
NEWEST_KNOWN = max(TARGETS)
MAX_VARINT_BYTES = 10


class OsTooOld(ModelError):
    """The model needs a newer iOS than the device runs: final on that device."""

    kind = "os_too_old"


def version_tuple(text: str) -> tuple[int, ...]:
    """``"16.7.8"`` → ``(16, 7, 8)``; ``"iOS11.2"`` → ``(11, 2)``; ``()`` if unreadable."""
    return leading(text)


def min_ios(spec_version: int) -> str | None:
    """The oldest iOS (``"16"``, ``"11.2"``) for a specification version; None if unknown."""
    target = TARGETS.get(spec_version)
    return target.removeprefix("iOS") if target else None


def os_too_old(spec_version: int, os_version: str) -> OsTooOld | None:
    """Why a model of ``spec_version`` cannot run on iOS ``os_version``, or None if it can.

    A version newer than this table needs an iOS newer than the newest we know; a device
    on an even newer iOS is given the benefit of the doubt (the runner still decides).
    """
    device = version_tuple(os_version)
    if not device:  # an OS version we cannot read: no reason to refuse, the device decides
        return None
    needed = min_ios(spec_version)
    if needed is not None:
        if device >= version_tuple(needed):
            return None
        what, where = f"needs iOS {needed}", f"iOS {needed} or later"
    else:
        newest = TARGETS[NEWEST_KNOWN].removeprefix("iOS")
        if spec_version < 1 or device[:1] > version_tuple(newest)[:1]:
            return None
        what, where = f"needs an iOS newer than {newest}", f"an iOS newer than {newest}"
    return OsTooOld(
        f"{what}, device runs {os_version}",
        hint=f"Core ML specification version {spec_version}: run it on devices with {where}",
    )


def read_spec_version(path: Path) -> int:
    """The ``specificationVersion`` of a ``.mlmodel`` file or an ``.mlpackage`` directory."""
    spec_file = _spec_file(path)
    try:
        with spec_file.open("rb") as src:
            version = _field_one(src)
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror})", path=str(path)) from error
    except ModelError as error:
        raise ModelError(
            f"{path}: not a Core ML model ({error.message})", path=str(path)
        ) from error
    if version is None or not 1 <= version < 2**31:
        raise ModelError(f"{path}: not a Core ML model (no specification version)", path=str(path))
    return version


def _spec_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    try:
        info = json.loads((path / "Manifest.json").read_text(encoding="utf-8"))
        root = info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
        data = (path / "Data").resolve()
        spec = (data / root).resolve()
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path}: Manifest.json is missing or malformed ({error})", path=str(path)
        ) from error
    if not spec.is_relative_to(data) or not spec.is_file():
        raise ModelError(f"{path}: the model spec {root} is missing", path=str(path))
    return Path(spec)


def _varint(src: BinaryIO) -> int | None:
    """One protobuf varint; None at the end of the input."""
    value = 0
    for shift in range(0, 7 * MAX_VARINT_BYTES, 7):
        byte = src.read(1)
        if not byte:
            if shift:
                raise ModelError("truncated protobuf varint")
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    raise ModelError("malformed protobuf varint")


def _field_one(src: BinaryIO) -> int | None:
    """Field 1 (``Model.specificationVersion``, a varint) of a serialised message.

    Serialisers write it first, so this reads a few bytes; should it come later, the
    other top-level fields are skipped by their lengths, never read into memory.
    """
    while (key := _varint(src)) is not None:
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = _varint(src)
            if field == 1:
                return value
        elif wire == 1:
            src.seek(8, 1)
        elif wire == 2:
            src.seek(_varint(src) or 0, 1)
        elif wire == 5:
            src.seek(4, 1)
        else:  # groups (3, 4) are not used by Core ML; anything else is not protobuf
            raise ModelError(f"unexpected protobuf wire type {wire}")
    return None
