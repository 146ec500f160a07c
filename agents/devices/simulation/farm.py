"""Farm specs: ``iPhone11,8=2,iPhone11,2@16.7.8=1!crash@1,iPad8,1=1`` or a YAML file.

A group is ``ProductType[@OS]=count[!fault…]``; ``!`` adds a fault to every device of the
group (write two groups of one ProductType for one faulty and one healthy device).
Faults: ``crash``, ``hang``, ``disconnect``, ``malformed``, ``compilefail`` — each with
``@N`` (the N-th run of that device), ``~P`` (probability per run) or nothing (every run);
``battery``, ``hot``, ``unpaired``, ``devmode`` make the device not ready.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orchestrator import catalog
from orchestrator.errors import UsageError

RUN_FAULTS = {"crash", "hang", "disconnect", "malformed", "compilefail"}
READY_FAULTS = {"battery", "hot", "unpaired", "devmode"}
GROUP = re.compile(
    r"(?P<pt>(?:iPhone|iPad|iPod)\d+,\d+)(?:@(?P<os>\d+(?:\.\d+){0,2}))?=(?P<count>\d+)"
    r"(?P<faults>(?:![a-z]+(?:@\d+|~(?:0(?:\.\d+)?|1(?:\.0+)?))?)*)"
)
FAULT = re.compile(r"!(?P<name>[a-z]+)(?:@(?P<at>\d+)|~(?P<p>[\d.]+))?")


@dataclass(frozen=True)
class Fault:
    name: str
    at_run: int | None = None  # 1-based run number of the device
    probability: float | None = None


@dataclass
class DeviceSpec:
    product_type: str
    os_version: str
    index: int
    faults: list[Fault] = field(default_factory=list)

    @property
    def udid(self) -> str:
        return "SIM-" + self.product_type.replace(",", "-") + f"-{self.index}"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _check_os(product_type: str, os_version: str) -> None:
    model = catalog.device(product_type)
    if _version_tuple(os_version) < _version_tuple(model.min_os):
        raise UsageError(
            f"{product_type} ({model.name}) shipped with {model.min_os}; {os_version} is older"
        )
    if model.max_os.isdigit() and _version_tuple(os_version)[0] > int(model.max_os):
        raise UsageError(
            f"{product_type} ({model.name}) stops at OS {model.max_os}.x; {os_version} is newer"
        )


def _faults(text: str) -> list[Fault]:
    faults = []
    for match in FAULT.finditer(text or ""):
        name = match["name"]
        if name not in RUN_FAULTS | READY_FAULTS:
            known = ", ".join(sorted(RUN_FAULTS | READY_FAULTS))
            raise UsageError(f"unknown simulated fault {name!r}", hint=f"known faults: {known}")
        faults.append(Fault(name, int(match["at"]) if match["at"] else None,
                            float(match["p"]) if match["p"] else None))  # fmt: skip
    return faults


def parse_farm(spec: str | Path) -> list[DeviceSpec]:
    text = str(spec).strip()
    if text.endswith((".yaml", ".yml")):
        return _from_yaml(Path(text))
    devices: list[DeviceSpec] = []
    position = 0
    counters: dict[str, int] = {}
    while position < len(text):
        match = GROUP.match(text, position)
        if not match:
            raise UsageError(
                f"cannot read the farm spec at {text[position : position + 30]!r}",
                hint="write groups like iPhone11,8=2,iPhone11,2@16.7.8=1!crash@1",
            )
        pt, count = match["pt"], int(match["count"])
        model = catalog.device(pt)
        os_version = match["os"] or model.newest_os()
        _check_os(pt, os_version)
        if count < 1 or count > 64:
            raise UsageError(f"{pt}: device count {count} outside 1..64")
        for _ in range(count):
            devices.append(
                DeviceSpec(pt, os_version, counters.get(pt, 0), _faults(match["faults"]))
            )
            counters[pt] = counters.get(pt, 0) + 1
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise UsageError(
                    f"expected ',' in the farm spec at {text[position : position + 20]!r}"
                )
            position += 1
    if not devices:
        raise UsageError("empty farm spec", hint="e.g. iPhone11,8=2,iPhone13,2=1")
    return devices


def _from_yaml(path: Path) -> list[DeviceSpec]:
    """devices: [{product_type: iPhone11,8, os: "16.7.8", count: 2, faults: ["crash@1"]}]"""
    if not path.is_file():
        raise UsageError(f"farm file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"farm file {path} is not valid YAML: {error}") from error
    parts = []
    for entry in data.get("devices", []):
        os_part = f"@{entry['os']}" if entry.get("os") else ""
        faults = "".join(f"!{f}" for f in entry.get("faults", []))
        parts.append(f"{entry['product_type']}{os_part}={entry.get('count', 1)}{faults}")
    return parse_farm(",".join(parts))
