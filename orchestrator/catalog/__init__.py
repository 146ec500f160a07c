"""Device generations: ProductType → marketing name, chip, ANE cores and TOPS, OS range.

Every row comes from ``docs/ane-facts.md`` (sources: hollance/neural-engine
supported-devices, pymobiledevice3 ``irecv_devices.py``, Apple newsroom figures).
``ane_tops`` is None where Apple published no figure. ``generation`` orders chips for
selectors such as ``chip>=A14``: the M1 shares the A14's ANE and the M4 sits with the A18
(an assumption about ordering only, used for selection, not for performance).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.errors import UsageError


@dataclass(frozen=True)
class Chip:
    name: str
    generation: int
    ane_cores: int
    ane_tops: float | None  # public figure; None = not published


CHIPS: dict[str, Chip] = {
    c.name: c
    for c in (
        Chip("A12", 12, 8, 5.0),
        Chip("A12X", 12, 8, 5.0),  # "~5" in public sources
        Chip("A12Z", 12, 8, 5.0),  # "~5"
        Chip("A13", 13, 8, None),  # not published; ~+20% over A12 by report
        Chip("A14", 14, 16, 11.0),
        Chip("M1", 14, 16, 11.0),
        Chip("A15", 15, 16, 15.8),
        Chip("A16", 16, 16, 17.0),
        Chip("A17 Pro", 17, 16, 35.0),
        Chip("A18", 18, 16, None),
        Chip("A18 Pro", 18, 16, None),
        Chip("M4", 18, 16, 38.0),
    )
}


@dataclass(frozen=True)
class DeviceModel:
    product_type: str
    name: str
    chip: str
    min_os: str
    # "18" / "26": last major OS; "current": still receives updates; "unknown": not known.
    max_os: str

    @property
    def chip_info(self) -> Chip:
        return CHIPS[self.chip]

    @property
    def ane_cores(self) -> int:
        return self.chip_info.ane_cores

    @property
    def ane_tops(self) -> float | None:
        return self.chip_info.ane_tops

    @property
    def family(self) -> str:
        return "iPad" if self.product_type.startswith("iPad") else "iPhone"

    def newest_os(self) -> str:
        """A concrete newest OS version, used as the simulated default.

        Assumption: "current" and "unknown" map to the newest release we model (26.1);
        iOS 18.x maps to 18.7.
        """
        return {"18": "18.7", "26": "26.1"}.get(self.max_os, CURRENT_OS)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            ane_cores=self.ane_cores,
            ane_tops=self.ane_tops,
            generation=self.chip_info.generation,
            family=self.family,
        )
        return data


CURRENT_OS = "26.1"


def _rows() -> list[DeviceModel]:
    rows = [
        DeviceModel("iPhone11,2", "iPhone XS", "A12", "12.0", "18"),
        DeviceModel("iPhone11,4", "iPhone XS Max", "A12", "12.0", "18"),
        DeviceModel("iPhone11,6", "iPhone XS Max", "A12", "12.0", "18"),
        DeviceModel("iPhone11,8", "iPhone XR", "A12", "12.0", "18"),
    ]
    rows += [
        DeviceModel(f"iPad8,{i}", 'iPad Pro 11" (2018)', "A12X", "12.1", "26") for i in range(1, 5)
    ]
    rows += [
        DeviceModel(f"iPad8,{i}", 'iPad Pro 12.9" (3rd generation, 2018)', "A12X", "12.1", "26")
        for i in range(5, 9)
    ]
    rows += [
        DeviceModel("iPad8,9", 'iPad Pro 11" (2020)', "A12Z", "13.4", "unknown"),
        DeviceModel("iPad8,10", 'iPad Pro 11" (2020)', "A12Z", "13.4", "unknown"),
        DeviceModel("iPad8,11", 'iPad Pro 12.9" (2020)', "A12Z", "13.4", "unknown"),
        DeviceModel("iPad8,12", 'iPad Pro 12.9" (2020)', "A12Z", "13.4", "unknown"),
        DeviceModel("iPhone12,1", "iPhone 11", "A13", "13.0", "current"),
        DeviceModel("iPhone12,3", "iPhone 11 Pro", "A13", "13.0", "current"),
        DeviceModel("iPhone12,5", "iPhone 11 Pro Max", "A13", "13.0", "current"),
        DeviceModel("iPhone12,8", "iPhone SE (2nd generation)", "A13", "13.4", "current"),
        DeviceModel("iPhone13,1", "iPhone 12 mini", "A14", "14.1", "current"),
        DeviceModel("iPhone13,2", "iPhone 12", "A14", "14.1", "current"),
        DeviceModel("iPhone13,3", "iPhone 12 Pro", "A14", "14.1", "current"),
        DeviceModel("iPhone13,4", "iPhone 12 Pro Max", "A14", "14.1", "current"),
        DeviceModel("iPhone14,2", "iPhone 13 Pro", "A15", "15.0", "current"),
        DeviceModel("iPhone14,3", "iPhone 13 Pro Max", "A15", "15.0", "current"),
        DeviceModel("iPhone14,4", "iPhone 13 mini", "A15", "15.0", "current"),
        DeviceModel("iPhone14,5", "iPhone 13", "A15", "15.0", "current"),
        DeviceModel("iPhone14,6", "iPhone SE (3rd generation)", "A15", "15.4", "current"),
        DeviceModel("iPhone14,7", "iPhone 14", "A15", "16.0", "current"),
        DeviceModel("iPhone14,8", "iPhone 14 Plus", "A15", "16.0", "current"),
        DeviceModel("iPhone15,2", "iPhone 14 Pro", "A16", "16.0", "current"),
        DeviceModel("iPhone15,3", "iPhone 14 Pro Max", "A16", "16.0", "current"),
        DeviceModel("iPhone15,4", "iPhone 15", "A16", "17.0", "current"),
        DeviceModel("iPhone15,5", "iPhone 15 Plus", "A16", "17.0", "current"),
        DeviceModel("iPhone16,1", "iPhone 15 Pro", "A17 Pro", "17.0", "current"),
        DeviceModel("iPhone16,2", "iPhone 15 Pro Max", "A17 Pro", "17.0", "current"),
        DeviceModel("iPhone17,1", "iPhone 16 Pro", "A18 Pro", "18.0", "current"),
        DeviceModel("iPhone17,2", "iPhone 16 Pro Max", "A18 Pro", "18.0", "current"),
        DeviceModel("iPhone17,3", "iPhone 16", "A18", "18.0", "current"),
        DeviceModel("iPhone17,4", "iPhone 16 Plus", "A18", "18.0", "current"),
        DeviceModel("iPhone17,5", "iPhone 16e", "A18", "18.3", "current"),
    ]
    rows += [
        DeviceModel(f"iPad13,{i}", "iPad Pro (M1, 2021)", "M1", "14.5", "current")
        for i in range(4, 12)
    ]
    rows += [
        DeviceModel(f"iPad16,{i}", "iPad Pro (M4, 2024)", "M4", "17.5", "current")
        for i in range(3, 7)
    ]
    return rows


DEVICES: dict[str, DeviceModel] = {d.product_type: d for d in _rows()}

_CHIP_CMP = re.compile(r"^chip\s*(>=|<=|>|<|==|=)\s*(.+)$", re.IGNORECASE)


def device(product_type: str) -> DeviceModel:
    """Look up one ProductType; an unknown one is an error naming close matches."""
    found = DEVICES.get(product_type)
    if found is None:
        raise UsageError(
            f"unknown device {product_type!r}",
            hint=_suggest(product_type, list(DEVICES) + list(CHIPS)),
        )
    return found


def _norm(name: str) -> str:
    # "A17 Pro", "a17pro" and "A17-Pro" are one chip; a bare "A17" is not (it is suggested).
    return re.sub(r"[\s_-]+", "", name).casefold()


def chip(name: str) -> Chip:
    wanted = _norm(name)
    for key, value in CHIPS.items():
        if _norm(key) == wanted:
            return value
    raise UsageError(f"unknown chip {name.strip()!r}", hint=_suggest(name.strip(), list(CHIPS)))


def chips(text: str | Sequence[str]) -> list[Chip]:
    """Chips named in a comma-separated list (or several of them, as a repeated option
    gives), in the order given without duplicates; an unknown name is a usage error."""
    parts = [text] if isinstance(text, str) else list(text)
    names = [piece.strip() for part in parts for piece in part.split(",") if piece.strip()]
    if not names:
        raise UsageError("no chip named", hint="e.g. --chip A12 or --chip A12,A14")
    return list({found.name: found for found in map(chip, names)}.values())


def devices_with_chip(name: str) -> list[DeviceModel]:
    wanted = chip(name).name
    return [d for d in DEVICES.values() if d.chip == wanted]


def _suggest(word: str, choices: list[str]) -> str:
    # Names that extend what was typed come first ("A17" → "A17 Pro"): difflib alone ranks
    # A18 / A16 / A15 above it, since they differ from "A17" by one character.
    key = _norm(word)
    extending = [c for c in choices if key and _norm(c).startswith(key) and _norm(c) != key]
    close = list(
        dict.fromkeys(extending + difflib.get_close_matches(word, choices, n=3, cutoff=0.5))
    )[:3]
    if close:
        return "did you mean " + ", ".join(close) + "?"
    return "see `anefarm devices catalog` for the known devices and chips"


def select(selector: str) -> list[DeviceModel]:
    """Resolve a device selector to catalog rows, in catalog order.

    Terms, comma-separated (union): ``all``, a ProductType (``iPhone11,8``), a glob
    (``iPad8,*``), a chip (``A12``, ``"A17 Pro"``), or a comparison (``chip>=A14``).
    ProductTypes contain commas themselves, so terms are split on ``,`` only where the
    next piece does not continue a ProductType (``iPhone11,8,A14`` = two terms).
    """
    terms = _split_terms(selector)
    if not terms:
        raise UsageError("empty device selector", hint="try `all`, `A12` or `iPhone11,8`")
    chosen: dict[str, DeviceModel] = {}
    for term in terms:
        for found in _select_term(term):
            chosen[found.product_type] = found
    order = list(DEVICES)
    return sorted(chosen.values(), key=lambda d: order.index(d.product_type))


def select_terms(selector: str) -> list[tuple[str, list[DeviceModel]]]:
    """Each term of a selector with the catalog rows it names (see :func:`select`)."""
    terms = _split_terms(selector)
    if not terms:
        raise UsageError("empty device selector", hint="try `all`, `A12` or `iPhone11,8`")
    return [(term, _select_term(term)) for term in terms]


def _split_terms(selector: str) -> list[str]:
    pieces = [p.strip() for p in selector.split(",")]
    terms: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        # "iPhone11" followed by "8" (or "*") belongs together.
        if (
            terms
            and re.fullmatch(r"(iPhone|iPad|iPod)\d+\*?", terms[-1])
            and re.fullmatch(r"[\d*?]+", piece)
        ):
            terms[-1] = f"{terms[-1]},{piece}"
        else:
            terms.append(piece)
    return terms


def _select_term(term: str) -> list[DeviceModel]:
    if term.lower() == "all":
        return list(DEVICES.values())
    if term in DEVICES:
        return [DEVICES[term]]
    compare = _CHIP_CMP.match(term)
    if compare:
        op, name = compare.groups()
        gen = chip(name).generation
        tests = {
            ">=": lambda g: g >= gen,
            "<=": lambda g: g <= gen,
            ">": lambda g: g > gen,
            "<": lambda g: g < gen,
            "==": lambda g: g == gen,
            "=": lambda g: g == gen,
        }
        return [d for d in DEVICES.values() if tests[op](d.chip_info.generation)]
    if any(ch in term for ch in "*?["):
        matches = [d for d in DEVICES.values() if fnmatch.fnmatchcase(d.product_type, term)]
        if matches:
            return matches
        raise UsageError(
            f"device selector {term!r} matches no device in the catalog",
            hint=_suggest(term, list(DEVICES)),
        )
    if any(_norm(term) == _norm(c) for c in CHIPS):
        return devices_with_chip(term)
    raise UsageError(
        f"unknown device selector {term!r}",
        hint=_suggest(term, list(DEVICES) + list(CHIPS) + ["all"]),
    )


def catalog_json() -> list[dict[str, Any]]:
    return [d.to_json() for d in DEVICES.values()]
