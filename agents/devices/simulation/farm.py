"""Farm specs: ``iPhone11,8=2,iPhone11,2@16.7.8=1!crash@1,iPad8,1=1`` or a YAML file.

A group is ``ProductType[@OS]=count[!fault…]`` (faults: ``faults.py``); every device of the
group gets the group's faults, so write two groups of one ProductType for one faulty and
one healthy device. The default OS is the newest the device supports. YAML::

    seed: 7                      # optional default noise seed for every group
    devices:
      - {product_type: "iPhone11,8", os: "16.7.8", count: 2, seed: 3, faults: ["crash@1"]}
    noise: {seed: 7, run_to_run_sigma: 0.08}     # optional: the farm over many nights
    timeline:                                    # (nights.py, docs/simulation.md)
      - {from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: "18.2", build: 22C152}}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from pydantic_core import ErrorDetails

from agents.devices.simulation.faults import Fault, parse_faults
from orchestrator import catalog
from orchestrator.catalog.osversion import parse
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from agents.devices.simulation.nights import Timeline

GROUP = re.compile(
    r"\s*(?P<pt>[A-Za-z]+[0-9]+,[0-9]+)(?:@(?P<os>[^=,!]*))?=(?P<count>[^,!]*)"
    r"(?P<faults>(?:![^!,]*)*)\s*"
)
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){0,2}")
MAX_PER_GROUP = 64
Seed = Annotated[StrictInt, Field(ge=0)] | None  # a bool is no seed
NIGHTS_KEYS = ("noise", "timeline")  # the farm over many nights (nights_file.py)
SPEC_HINT = "write groups like iPhone11,8=2,iPhone11,2@16.7.8=1!crash@1 (docs/simulation.md)"


@dataclass(frozen=True)
class DeviceSpec:
    product_type: str
    os_version: str
    index: int  # n-th simulated device of this ProductType in the farm
    faults: list[Fault] = field(default_factory=list)
    seed: int | None = None  # None: the farm's seed
    timeline: Timeline | None = None  # the farm over many nights (YAML files only)

    @property
    def udid(self) -> str:
        """The device's name within its spec (what a timeline's ``udid`` names, and what its
        faults and noise are drawn from); an agent's devices add the agent's tag to it."""
        # Commas are not allowed in UDIDs (queue and file names): iPhone11,8 → iPhone11-8.
        return "SIM-" + self.product_type.replace(",", "-") + f"-{self.index}"


def agent_udid(spec_udid: str, agent: str | None, seed: int) -> str:
    """The UDID a device of ``agent``'s farm goes by in the live state and the database.

    Two agents given the same spec would otherwise both have ``SIM-iPhone11-8-0``; the tag
    (six hex digits of the agent's name and seed) tells them apart, and a restarted agent,
    with the same name and seed, finds its devices under the same UDIDs again. Without an
    agent (a farm built in this process) the spec's own name stands."""
    if agent is None:
        return spec_udid
    tag = hashlib.sha256(f"{agent}\0{seed}".encode()).hexdigest()[:6]
    return f"{spec_udid}-{tag}"


def check_os(product_type: str, os_version: str) -> str:
    """The OS version if this device can run it, else a UsageError naming the range."""
    model = catalog.device(product_type)
    if not VERSION.fullmatch(os_version):
        raise UsageError(
            f"{product_type}: OS version {os_version!r} is not like 17.4 or 16.7.8",
            hint=f"omit @OS for the newest ({model.newest_os()})",
        )
    newest, version = model.newest_os(), parse(os_version)  # "12" is 12.0, not before it
    if version < parse(model.min_os) or version.major > parse(newest).major:
        raise UsageError(
            f"{product_type} ({model.name}) runs OS {model.min_os} to {parse(newest).major}.x,"
            f" not {os_version}",
            hint=f"omit @OS for the newest ({newest})",
        )
    return os_version


def _count(product_type: str, text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_PER_GROUP:
        raise UsageError(
            f"{product_type}: device count {text.strip()!r} is not a number from 1 to"
            f" {MAX_PER_GROUP}",
            hint="e.g. iPhone11,8=2",
        )
    return int(text)


def parse_farm(spec: str | Path) -> list[DeviceSpec]:
    """Every simulated device a spec describes, in order, with stable indexes."""
    if isinstance(spec, Path) or str(spec).strip().endswith((".yaml", ".yml")):
        return _from_yaml(Path(str(spec).strip()))
    text = spec.strip()
    if not text:
        raise UsageError("empty farm spec", hint="e.g. iPhone11,8=2,iPhone13,2=1")
    groups: list[tuple[str, str, int, list[Fault], int | None]] = []
    position = 0
    while position < len(text):
        match = GROUP.match(text, position)
        if not match:
            raise UsageError(
                f"cannot read the farm spec at {text[position : position + 30]!r}", hint=SPEC_HINT
            )
        pt = match["pt"]
        catalog.device(pt)  # unknown ProductType: a UsageError with close matches
        os_version = check_os(pt, match["os"]) if match["os"] is not None else None
        faults = parse_faults(match["faults"].split("!")[1:])
        groups.append((pt, os_version or "", _count(pt, match["count"]), faults, None))
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise UsageError(
                    f"expected ',' in the farm spec at {text[position : position + 20]!r}",
                    hint=SPEC_HINT,
                )
            position += 1
    return _expand(groups)


def _expand(groups: list[tuple[str, str, int, list[Fault], int | None]]) -> list[DeviceSpec]:
    devices: list[DeviceSpec] = []
    counters: dict[str, int] = {}
    for pt, wanted_os, count, faults, seed in groups:
        os_version = wanted_os or catalog.device(pt).newest_os()
        for _ in range(count):
            index = counters.get(pt, 0)
            counters[pt] = index + 1
            devices.append(DeviceSpec(pt, os_version, index, list(faults), seed))
    return devices


class _Group(BaseModel):
    """One ``devices`` entry. os and count stay loose here (YAML reads 16.7 as a float):
    ``check_os`` and ``_count`` judge them as they do in a spec string."""

    model_config = ConfigDict(extra="forbid")

    product_type: StrictStr
    os: Any = None
    count: Any = 1
    seed: Seed = None
    faults: list[StrictStr] = []


class _FarmFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: Seed = None
    devices: list[_Group] = Field(min_length=1)


def _from_yaml(path: Path) -> list[DeviceSpec]:
    if not path.is_file():
        raise UsageError(f"farm file {path} not found", hint="give a YAML file or a spec string")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UsageError(
            f"farm file {path} is not valid YAML: {error}".replace("\n", " ")
        ) from error
    # The nights part is judged after the devices, so a file's first problem stays first.
    nights_part = {}
    if isinstance(data, dict):
        nights_part = {key: data.pop(key) for key in NIGHTS_KEYS if key in data}
    try:
        farm = _FarmFile.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise _problem(path, error.errors()) from None
    groups = []
    for entry in farm.devices:
        pt = entry.product_type
        catalog.device(pt)
        os_version = check_os(pt, str(entry.os)) if entry.os is not None else ""
        count = _count(pt, str(entry.count))
        groups.append((pt, os_version, count, parse_faults(entry.faults), entry.seed))
    specs = _expand(groups)
    if farm.seed is not None:
        specs = [
            s if s.seed is not None else DeviceSpec(s.product_type, s.os_version, s.index,
                                                    s.faults, farm.seed)
            for s in specs
        ]  # fmt: skip
    if nights_part:
        from agents.devices.simulation.nights_file import parse_timeline

        farm_devices = [(s.product_type, s.udid) for s in specs]
        timeline = parse_timeline(path, nights_part, farm=farm_devices, check_os=check_os)
        specs = [replace(s, timeline=timeline) for s in specs]
    return specs


def _problem(path: Path, errors: list[ErrorDetails]) -> UsageError:
    """The first thing wrong with a farm file, in one line (all its unknown keys at once)."""
    # A file without its devices list says so before anything else, as it always did.
    first = next((e for e in errors if e["loc"] in {(), ("devices",)}), errors[0])
    loc = first["loc"]
    in_entry = len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int)
    field = loc[2 if in_entry else 0] if len(loc) > (2 if in_entry else 0) else None
    where = f"{path} device entry {int(loc[1]) + 1}" if in_entry else f"farm file {path}"
    if first["type"] == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1]) for e in errors
                         if e["type"] == "extra_forbidden" and e["loc"][:-1] == loc[:-1])  # fmt: skip
        model = _Group if in_entry else _FarmFile
        return UsageError(
            f"{where}: unknown keys {unknown}", hint=f"allowed: {', '.join(model.model_fields)}"
        )
    if field == "seed":
        what = f"device entry {int(loc[1]) + 1} seed" if in_entry else "seed"
        return UsageError(f"{path}: {what} must be a whole number ≥ 0, not {first['input']!r}")
    if field == "faults":
        return UsageError(f"{where}: faults must be a list of strings like 'crash@1'")
    if in_entry:  # not a mapping, or no product_type string
        return UsageError(f'{where}: needs product_type, e.g. product_type: "iPhone11,8"')
    return UsageError(
        f"farm file {path} needs a non-empty 'devices' list",
        hint='devices: [{product_type: "iPhone11,8", count: 2}]',
    )
