"""Reading a farm file's ``noise`` and ``timeline`` sections: every mistake is one line that
names the file, the timeline entry and the key path (docs/simulation.md, "Many nights")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agents.devices.simulation.nights import (
    ACTIONS,
    CompileFails,
    Entry,
    Hot,
    Noise,
    OffAne,
    OsUpgrade,
    Slow,
    Timeline,
    check_op_name,
)
from orchestrator.errors import UsageError

EXAMPLE = 'e.g. - {from: 2026-03-18, slow: {class: "iPhone11,8", factor: 1.15}}'
# The model behind each key path, for the "allowed:" hint of an unknown key.
SECTIONS: dict[str, type[BaseModel]] = {
    "noise": Noise, "os_upgrade": OsUpgrade, "slow": Slow, "off_ane": OffAne,
    "compile_fails": CompileFails, "hot": Hot,
}  # fmt: skip


def parse_timeline(
    path: Path,
    data: dict[str, Any],
    *,
    farm: Sequence[tuple[str, str]],
    check_os: Callable[[str, str], str],
) -> Timeline:
    """The validated nights part of a farm file, checked against the farm's devices
    (``farm``: their (ProductType, UDID); ``check_os``: farm.check_os, passed in so this
    module needs nothing of farm.py, which reads it)."""
    try:
        timeline = Timeline.model_validate(data)
    except ValidationError as error:
        raise _problem(path, data, error.errors()) from None
    classes = sorted({product_type for product_type, _ in farm})
    devices = set(farm)
    for n, entry in enumerate(timeline.timeline, start=1):
        where = f"{path} timeline entry {n}"
        target = entry.product_type
        if target is not None and target not in classes:
            raise UsageError(
                f"{where}: {entry.action}.class {target!r} is not a device class of this farm",
                hint=f"the farm has {', '.join(classes)}; add its devices to 'devices'",
            )
        if entry.os_upgrade is not None:
            up = entry.os_upgrade
            if up.udid is not None and (up.product_type, up.udid) not in devices:
                same = sorted(u for p, u in devices if p == up.product_type)
                raise UsageError(
                    f"{where}: os_upgrade.udid {up.udid!r} is not a device of class"
                    f" {up.product_type} here",
                    hint=f"that class has {', '.join(same)}",
                )
            try:
                check_os(up.product_type, str(up.version))
            except UsageError as error:
                raise UsageError(f"{where}: os_upgrade.version: {error.message}",
                                 hint="quote it: version: \"18.2\"") from None  # fmt: skip
        if entry.off_ane is not None and (wrong := check_op_name(entry.off_ane.op)):
            raise UsageError(f"{where}: off_ane.op: {wrong}",
                             hint="a kind such as conv, or conv_dilated, or a MIL op type")  # fmt: skip
    return timeline


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _problem(path: Path, data: dict[str, Any], errors: list[ErrorDetails]) -> UsageError:
    """The first thing wrong, in one line: ``<file> timeline entry 2: slow.factor: …``."""
    # An unknown key first: a misspelt key is also why the right one is missing.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = first["loc"]
    if loc and loc[0] == "timeline" and len(loc) >= 2 and isinstance(loc[1], int):
        where, inner = f"{path} timeline entry {loc[1] + 1}", loc[2:]
    elif loc and loc[0] == "timeline":
        return UsageError(f"{path}: timeline must be a list of entries", hint=EXAMPLE)
    else:
        where, inner = f"farm file {path}", loc
    # Error locations come from the union of an action's forms; keep the readable part.
    inner = tuple(part for part in inner if not str(part).startswith(("function-", "lax-")))
    if first["type"] == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1]) for e in errors
                         if e["type"] == "extra_forbidden" and e["loc"][:-1] == loc[:-1])  # fmt: skip
        section = str(inner[-2]) if len(inner) >= 2 else ""
        model = SECTIONS.get(section) or (Entry if len(loc) == 3 else Timeline)
        allowed = [f.alias or name for name, f in model.model_fields.items()]
        parent = f"{_dotted(inner[:-1])}: " if len(inner) > 1 else ""
        return UsageError(f"{where}: {parent}unknown keys {unknown}",
                          hint=f"allowed: {', '.join(allowed)}")  # fmt: skip
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "missing"
    elif first["type"] in {"model_type", "model_attributes_type"}:
        message = f"must be a mapping, not {first['input']!r}"
        if not inner:
            message += f" ({EXAMPLE}; actions: {', '.join(ACTIONS)})"
    key = f"{_dotted(inner)}: " if inner else ""
    return UsageError(f"{where}: {key}{message}")
