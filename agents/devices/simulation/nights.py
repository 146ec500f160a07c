"""A SIMULATED farm over many nights: a farm file's ``noise`` and ``timeline`` sections.

A batch whose ``RunSpec.night`` is set (a sweep's night) runs on the farm *as it is that
night*: OS upgrades from their night on, classes added or removed, the run-to-run noise of
a real farm, and the SIMULATED regressions (a class slowed, an op moved off the ANE on an
OS build, a model that stops compiling on an OS build, a class that runs hot). A batch
without a night runs on the farm as described, exactly as before the timeline existed.
docs/simulation.md, "Many nights", has the YAML and every number with its source.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fnmatch import fnmatchcase
from statistics import NormalDist
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from agents.devices.simulation.chips import chip_model
from agents.devices.simulation.profile import ModelProfile, profile
from agents.devices.simulation.runner import NOISE_SIGMA
from agents.devices.simulation.support import OFF_ANE_NAMES
from agents.devices.simulation.thermal import HOT_STATES, THROTTLE
from orchestrator import catalog
from orchestrator.catalog.osversion import release
from orchestrator.errors import AnefarmError
from orchestrator.modelkit.inventory import OpInfo
from orchestrator.protocol import ABSENT_FROM_FARM, ComputeUnit, ComputeUnits, ThermalState

if TYPE_CHECKING:
    from agents.devices.simulation.farm import DeviceSpec

# ASSUMPTION (docs/simulation.md): the spread of one run's median around the device's
# typical median, from night to night. pytorch/executorch issues 8603 and 6297 saw
# run-to-run differences over 10 % on phones with small in-run spread; with σ = 0.08 two
# nights differ by more than 10 % in about 40 % of pairs (bench/simulation_nights.py).
RUN_TO_RUN_SIGMA = 0.08
STANDARD_NORMAL = NormalDist()
SIM_SUFFIX = "sim"  # simulated builds end so: never a real build in a cache keyed by build


class NotInFarm(AnefarmError):
    """A device of a class the timeline says is not in the farm on the batch's night."""

    kind = ABSENT_FROM_FARM
    infra = True


def os_build(product_type: str, os_version: str) -> str:
    """A build string shaped like Apple's (iOS 17.4 → 21E…) ending in ``sim``, so it can
    never collide with a real build in a cache keyed by OS build."""
    major, minor, patch = (*release(os_version), 0, 0)[:3]
    train = 23 if major >= 26 else major + 4  # iOS 18 → 22, iOS 26 → 23
    digest = hashlib.sha256(f"{product_type}@{os_version}".encode()).digest()
    number = 10 + patch * 40 + digest[0] % 40 + (digest[1] % 5) * 100
    return f"{train}{chr(ord('A') + min(minor, 25))}{number}{SIM_SUFFIX}"


def sim_build(build: str) -> str:
    """The build a simulated device reports for a build a timeline names (22C152 →
    22C152sim); timeline entries may name either form."""
    return build if build.endswith(SIM_SUFFIX) else build + SIM_SUFFIX


def _night(value: Any) -> Any:
    # A datetime is a date too, and pydantic reads a number as a timestamp: refuse both.
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise ValueError(f"must be a date like 2026-03-18, not {value!r}")
    return value


Night = Annotated[date, BeforeValidator(_night)]
Build = Annotated[str, Field(pattern=r"^[0-9]{2}[A-Z][0-9]{1,5}[a-z]{0,4}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OsUpgrade(_Strict):
    product_type: StrictStr = Field(alias="class")
    version: Any  # YAML reads 18.2 as a float: judged as text by farm.check_os
    build: Build | None = None  # None: derived from the version, as the farm's own OS
    udid: StrictStr | None = None  # None: every device of the class


class Slow(_Strict):
    product_type: StrictStr = Field(alias="class")
    factor: float = Field(gt=0, le=100, allow_inf_nan=False)  # < 1 is a speed-up


class Hot(_Strict):
    """The class runs hot (SIMULATED): its devices never cool below ``state`` (fair or
    serious), so they report it and throttle as it does (thermal.py)."""

    product_type: StrictStr = Field(alias="class")
    state: ThermalState = ThermalState.SERIOUS

    @model_validator(mode="after")
    def _hot_state(self) -> Hot:
        if self.state not in HOT_STATES:
            raise ValueError(f"state must be one of {', '.join(HOT_STATES)}, not {self.state}")
        return self


class OffAne(_Strict):
    op: StrictStr  # a modelkit kind, a native op type, or conv_dilated
    os_build: Build | None = None  # None: on every OS from the night on


class CompileFails(_Strict):
    model: StrictStr | None = None  # a pattern on the model's file name (* and ?)
    model_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{6,64}$")] | None = None
    os_build: Build | None = None

    @model_validator(mode="after")
    def _one_model(self) -> CompileFails:
        if (self.model is None) == (self.model_sha256 is None):
            raise ValueError("give model (a file name pattern) or model_sha256, one of them")
        return self

    def hits(self, name: str, sha256: str, build: str) -> bool:
        if self.os_build is not None and sim_build(self.os_build) != build:
            return False
        if self.model_sha256 is not None:
            return sha256.startswith(self.model_sha256)
        stem = name.rsplit(".", 1)[0]
        return any(fnmatchcase(text, self.model or "") for text in (name, stem))


class ClassChange(_Strict):
    product_type: StrictStr = Field(alias="class")


ACTIONS = ("os_upgrade", "slow", "off_ane", "compile_fails", "add", "remove", "hot")


class Entry(_Strict):
    """One change of the farm from the night ``from`` on (until the night ``until``, not
    included). ``add`` means the class is absent *before* ``from``."""

    start: Night = Field(alias="from")
    until: Night | None = None
    os_upgrade: OsUpgrade | None = None
    slow: Slow | None = None
    off_ane: OffAne | None = None
    compile_fails: CompileFails | None = None
    add: ClassChange | None = None
    remove: ClassChange | None = None
    hot: Hot | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Entry:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {', '.join(ACTIONS)}, has {given or 'none'}")
        if self.until is not None and self.until <= self.start:
            raise ValueError(f"until {self.until} is not after from {self.start}")
        if self.until is not None and self.add is not None:
            raise ValueError("add has no until: write a remove entry from that night")
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)

    def active(self, night: date) -> bool:
        return self.start <= night and (self.until is None or night < self.until)

    @property
    def product_type(self) -> str | None:
        target = getattr(self, self.action)
        return getattr(target, "product_type", None)


class Noise(_Strict):
    seed: Annotated[StrictInt, Field(ge=0)] | None = None  # None: each device's seed
    run_to_run_sigma: float = Field(default=RUN_TO_RUN_SIGMA, ge=0, le=1, allow_inf_nan=False)


class Timeline(_Strict):
    """The nights part of a farm file (empty: only the run-to-run noise on a night)."""

    noise: Noise = Noise()
    timeline: list[Entry] = []


def check_op_name(name: str) -> str | None:
    """None when ``off_ane.op`` names something an op can be, else what is wrong."""
    if name in OFF_ANE_NAMES:
        return None
    from difflib import get_close_matches

    close = get_close_matches(name, sorted(OFF_ANE_NAMES), n=3)
    return f"unknown op {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")


@dataclass(frozen=True)
class NightState:
    """One device on one night: what it reports and how it behaves. ``night`` None is the
    farm as described (no timeline, no run-to-run noise)."""

    night: date | None
    present: bool
    os_version: str
    os_build: str
    slow: float = 1.0
    off_ane: frozenset[str] = frozenset()  # op names moved off the ANE tonight
    compile_fails: tuple[CompileFails, ...] = ()
    sigma: float = 0.0  # run-to-run σ (0 without a night)
    noise_seed: int = 0
    hot: ThermalState | None = None  # the device runs hot tonight, at least at this state

    def run_to_run(self, udid: str, sha256: str, draw: int = 0) -> float:
        """The multiplicative factor of this night's run of a model on a device: the
        ``draw``-th run of the night (0 the nightly run, 1 a confirmation …) gets its own."""
        if self.night is None or self.sigma == 0:
            return 1.0
        # A normal deviate from a hash: the same in every process (spawned or forked workers,
        # the benchmark) and a few µs, where seeding a generator costs ten times more.
        key = f"r2r:{self.noise_seed}:{udid}:{sha256}:{self.night}:{draw}".encode()
        uniform = (int.from_bytes(hashlib.sha256(key).digest()[:8]) + 0.5) / 2**64
        return math.exp(self.sigma * STANDARD_NORMAL.inv_cdf(uniform))

    def fails_to_compile(self, name: str, sha256: str) -> bool:
        return any(rule.hits(name, sha256, self.os_build) for rule in self.compile_fails)

    def absent_message(self, product_type: str) -> str:
        return f"{product_type} is not in the farm on {self.night} (SIMULATED timeline)"


def night_state(
    timeline: Timeline | None,
    *,
    product_type: str,
    udid: str,
    os_version: str,
    seed: int,
    night: date | None,
) -> NightState:
    """Where one device stands on ``night`` (entries in file order; a later OS upgrade
    of the same night wins)."""
    base = NightState(night=None, present=True, os_version=os_version,
                      os_build=os_build(product_type, os_version))  # fmt: skip
    if night is None:
        return base
    timeline = timeline or Timeline()
    present, slow = True, 1.0
    version, build = os_version, base.os_build
    upgrades = [e for e in timeline.timeline if e.os_upgrade is not None and e.active(night)]
    for entry in sorted(upgrades, key=lambda e: e.start):  # stable: file order per night
        up = entry.os_upgrade
        assert up is not None
        if up.product_type == product_type and up.udid in (None, udid):
            version = str(up.version)
            build = sim_build(up.build) if up.build else os_build(product_type, version)
    off: set[str] = set()
    fails: list[CompileFails] = []
    hot: ThermalState | None = None
    for entry in timeline.timeline:
        if entry.add is not None and entry.add.product_type == product_type:
            present = present and night >= entry.start
        if not entry.active(night):
            continue
        if entry.remove is not None and entry.remove.product_type == product_type:
            present = False
        elif entry.slow is not None and entry.slow.product_type == product_type:
            slow *= entry.slow.factor
        elif entry.off_ane is not None:
            wanted = entry.off_ane.os_build
            if wanted is None or sim_build(wanted) == build:
                off.add(entry.off_ane.op)
        elif entry.compile_fails is not None:
            fails.append(entry.compile_fails)
        elif entry.hot is not None and entry.hot.product_type == product_type:
            hot = max(hot or entry.hot.state, entry.hot.state, key=THROTTLE.__getitem__)
    noise = timeline.noise
    return NightState(
        night=night, present=present, os_version=version, os_build=build, slow=slow,
        off_ane=frozenset(off), compile_fails=tuple(fails), sigma=noise.run_to_run_sigma,
        noise_seed=noise.seed if noise.seed is not None else seed, hot=hot,
    )  # fmt: skip


def nights_between(first: date, last: date) -> Sequence[date]:
    """Every night from ``first`` to ``last``, both included (for benchmarks and tests)."""
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


# -- the benchmark's helper: a series over many nights without Celery ---------------------


@dataclass(frozen=True)
class SeriesNight:
    """One (device, model, compute units) on one night, as the pipeline would measure it:
    ``failure`` says why there are no samples (absent class, SIMULATED compile failure)."""

    night: date | None
    os_version: str
    os_build: str
    failure: str | None
    units: tuple[ComputeUnit, ...]  # where each op ran (placement under compute_units)
    steady_ms: float  # the noiseless latency × slow-down × tonight's run-to-run factor
    samples: list[float]

    @property
    def median(self) -> float | None:
        ordered = sorted(self.samples)
        n = len(ordered)
        if not n:
            return None
        return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


_PROFILES: dict[tuple[str, str, frozenset[str]], ModelProfile] = {}


def night_samples(
    device: DeviceSpec,
    ops: Sequence[OpInfo],
    compute_units: ComputeUnits,
    night: date | None,
    *,
    sha256: str,
    name: str = "model.mlpackage",
    iterations: int = 50,
    draw: int = 0,
    seed: int = 0,
) -> SeriesNight:
    """The latency samples a SIMULATED device of ``parse_farm`` gives one model on one
    night: its timeline, slow-down, placement and run-to-run noise exactly as the pipeline's
    device applies them, and the same within-run noise (σ 3 %) drawn from its own seed, so
    sample-for-sample they differ from a pipeline run, statistically they do not. No
    thermal throttling of its own load (a cool device; a ``hot`` class throttles at its
    state) and no Celery: about 50 µs per series-night
    (bench/simulation_nights.py).
    ``draw``: 0 the nightly run, 1 a confirmation run of the same night …; ``seed``: the
    farm's seed when the device has none (as ``build_farm``)."""
    own_seed = device.seed if device.seed is not None else seed
    tonight = night_state(device.timeline, product_type=device.product_type, udid=device.udid,
                          os_version=device.os_version, seed=own_seed, night=night)  # fmt: skip
    failure = None
    if not tonight.present:
        failure = tonight.absent_message(device.product_type)
    elif tonight.fails_to_compile(name, sha256):
        failure = f"compile_fails on {tonight.os_build} (SIMULATED regression)"
    chip = chip_model(catalog.device(device.product_type).chip)
    key = (sha256, chip.name, tonight.off_ane)
    prof = _PROFILES.get(key)
    if prof is None:
        if len(_PROFILES) > 4096:  # a benchmark's many models: keep memory bounded
            _PROFILES.clear()
        why = f"moved off the ANE on {tonight.os_build} (SIMULATED regression)"
        prof = _PROFILES[key] = profile(ops, chip, off_ane=tonight.off_ane, why=why)
    placement = prof.placements[compute_units]
    steady = placement.steady_ms * tonight.slow * tonight.run_to_run(device.udid, sha256, draw)
    steady *= THROTTLE[tonight.hot] if tonight.hot is not None else 1.0
    samples: list[float] = []
    if failure is None:
        # numpy draws the samples at once: a benchmark simulates thousands of series-nights.
        text = f"samples:{own_seed}:{device.udid}:{sha256}:{night}:{draw}:{compute_units}"
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8]))
        samples = np.round(steady * rng.lognormal(0.0, NOISE_SIGMA, iterations), 6).tolist()
    return SeriesNight(night=night, os_version=tonight.os_version, os_build=tonight.os_build,
                       failure=failure, units=tuple(placement.units), steady_ms=steady,
                       samples=samples)  # fmt: skip
