"""SIMULATED devices: any ProductType of the catalog behind the Device interface.

They flow through the very same pipeline as real devices; every identity and result says
``simulated``. Deterministic for a seed. Time is ``instant`` (durations are reported,
nothing sleeps) or ``realtime`` (sleeps the simulated duration ÷ ``speed``). The model is
inspected once per sha256 (coremltools is slow); tests can skip files entirely with
``simulate_batch(manifest, inventory, timeout_s)``. ``at_night(night)`` puts the device on
a night of its farm's timeline (simulation/nights.py): the agent calls it with every batch's
``RunSpec.night``, and None is the farm as described.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import ValidationError

from agents.devices.base import DeviceIdentity, Diagnostics, Readiness
from agents.devices.simulation import latency
from agents.devices.simulation.chips import chip_model
from agents.devices.simulation.farm import DeviceSpec, agent_udid, parse_farm
from agents.devices.simulation.faults import FaultScript
from agents.devices.simulation.model_cache import ModelCache
from agents.devices.simulation.nights import NightState, NotInFarm, night_state, os_build
from agents.devices.simulation.runner import (
    RUNNER_VERSION,
    DeviceState,
    PackedModel,
    Truth,
    simulate,
    simulate_packed,
)
from agents.devices.simulation.symptoms import (
    crash_report,
    driver_bug,
    readiness,
    sent_to_background,
)
from orchestrator import catalog
from orchestrator.errors import (
    DeviceGone,
    DeviceNotReady,
    ProtocolError,
    RunnerCrashed,
    RunnerTimeout,
    UsageError,
)
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import (
    ComputePlan,
    DeviceFacts,
    ManifestModel,
    RunnerError,
    RunnerErrorKind,
    RunnerManifest,
    RunnerResult,
)

TIME_MODES = ("instant", "realtime")
REBOOT_S = 30.0  # a phone restart until lockdown answers again (assumption)

__all__ = ["SimulatedDevice", "build_farm", "os_build", "sent_to_background"]


class SimulatedDevice:
    """One simulated iPhone or iPad (see docs/simulation.md)."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        seed: int = 0,
        time_mode: str = "instant",
        speed: float = 1.0,
        agent: str | None = None,
    ) -> None:
        model = catalog.device(spec.product_type)
        self.spec = spec
        self.seed = spec.seed if spec.seed is not None else seed
        self.time_mode = time_mode
        self.speed = speed
        self.chip = chip_model(model.chip)
        self._identity = DeviceIdentity(
            udid=agent_udid(spec.udid, agent, seed),
            product_type=spec.product_type,
            chip=model.chip,
            os_version=spec.os_version,
            os_build=os_build(spec.product_type, spec.os_version),
            name=f"{model.name} #{spec.index} (SIMULATED)",
            simulated=True,
        )
        self._facts = DeviceFacts(
            product_type=spec.product_type, os_version=spec.os_version,
            os_build=self._identity.os_build,
        )  # fmt: skip
        self.state = DeviceState()
        self.faults = FaultScript(spec.faults, f"{self.seed}:{spec.udid}")
        self.runs = 0
        self.reboots = 0
        self.last_truth: Truth | None = None
        self.last_truths: list[Truth] = []  # each model's, for a packed launch
        self.busy_s = 0.0  # device time of every launch so far (a failed one in full)
        self._log: list[str] = []
        self._crash_report: str | None = None
        self.models = ModelCache(self.chip)
        # The farm as described until a batch names a night (at_night).
        self.night = night_state(None, product_type=spec.product_type, udid=spec.udid,
                                 os_version=spec.os_version, seed=self.seed, night=None)  # fmt: skip
        self._plans: dict[frozenset[str], dict[str, ComputePlan]] = {frozenset(): self.state.plans}
        self._idle_since: float | None = None
        self._closed = False

    @property
    def identity(self) -> DeviceIdentity:
        return self._identity

    def at_night(self, night: date | None) -> NightState:
        """Put the device on ``night`` of its farm's timeline: the OS it reports (identity
        and the runner's DeviceFacts), whether it is in the farm, the SIMULATED regressions
        and the run-to-run noise. None: the farm as described, exactly as without nights."""
        spec = self.spec
        if night is not None and night != self.night.night:
            # A day passed since the last night's batches (instant mode has no idle time of
            # its own): the device starts the night cool, as a farm's phones do.
            self.state.heat.idle(float("inf"))
        self.night = night_state(spec.timeline, product_type=spec.product_type, udid=spec.udid,
                                 os_version=spec.os_version, seed=self.seed, night=night)  # fmt: skip
        self.state.heat.run_hot(self.night.hot)  # a timeline's `hot` class (SIMULATED)
        os_version, build = self.night.os_version, self.night.os_build
        self._identity = replace(self._identity, os_version=os_version, os_build=build)
        self._facts = DeviceFacts(product_type=spec.product_type, os_version=os_version,
                                  os_build=build)  # fmt: skip
        # The compute plan is cached per model; a model placed otherwise tonight has its own.
        self.state.plans = self._plans.setdefault(self.night.off_ane, {})
        return self.night

    def readiness(self, *, deep: bool = True) -> Readiness:
        return readiness(self.faults.readiness(), self.state.heat.state)

    def run(self, manifest: RunnerManifest, model_path: Path, timeout_s: float) -> RunnerResult:
        """Inspect the model (once per sha256), then simulate the batch."""
        self._check_open()
        inventory = self.models.inventory(manifest.model.sha256, model_path)
        return self.simulate_batch(manifest, inventory, timeout_s)[0]

    def run_packed(
        self, manifest: RunnerManifest, model_paths: list[Path], timeout_s: float
    ) -> RunnerResult:
        """One launch of a packed (version 2) manifest: ``model_paths`` in its models' order."""
        self._check_open()
        inventories = [
            self.models.inventory(entry.sha256, path)
            for entry, path in zip(manifest.all_models, model_paths, strict=True)
        ]
        return self.simulate_batch(manifest, inventories, timeout_s)[0]

    def simulate_batch(
        self,
        manifest: RunnerManifest,
        inventory: ModelInventory | list[ModelInventory],
        timeout_s: float,
    ) -> tuple[RunnerResult, Truth]:
        """The whole run from an inventory: faults, fixed costs, runner. Also sets
        ``last_truth``. Raises what ``run`` raises. A list of inventories is a packed
        launch (one per model of the manifest): launched once, each model pushed and
        compiled; ``last_truths`` then has each model's own truth."""
        inventories = inventory if isinstance(inventory, list) else [inventory]
        self._check_open()
        udid = self.identity.udid
        self._log = [f"runner {RUNNER_VERSION}: batch {manifest.batch_id} on {udid} (SIMULATED)"]
        self._crash_report = None
        tonight = self.night
        if not tonight.present:
            message = tonight.absent_message(self.spec.product_type)
            self._log.append(message)
            raise NotInFarm(f"{udid}: {message}", hint="the farm file's timeline says so")
        self.runs += 1
        ready = self.readiness()
        if not ready.ready:
            self._log.append("not ready: " + "; ".join(ready.reasons))
            raise DeviceNotReady(
                f"{udid} is not ready: {'; '.join(ready.reasons)}",
                udid=udid,
                reasons=ready.reasons,
                hint="fix the device, or let the supervisor quarantine it",
            )
        # A fault scripted for one model (crash#sha…) fires when the launch carries it.
        fired_by_model = [self.faults.fire(self.runs, inv.sha256) for inv in inventories]
        fired = set().union(*fired_by_model)
        if "exception" in fired:
            self._log.append("driver: unexpected exception (SIMULATED bug)")
            driver_bug(udid)
        self._cool_down_between_runs()
        # One launch; every model pushed (packed probes pay the launch once).
        fixed_s = latency.RUNNER_LAUNCH_S + sum(latency.push_s(i.size_bytes) for i in inventories)
        self.state.heat.idle(fixed_s)
        packed = [
            self._packed_model(entry, inv, model_fired)
            for entry, inv, model_fired in zip(
                manifest.all_models, inventories, fired_by_model, strict=True
            )
        ]
        fails = packed[0].model_fault is RunnerErrorKind.COMPILE and "compilefail" not in fired
        if manifest.models is not None:
            result, truths = simulate_packed(manifest, packed, facts=self._facts, state=self.state,
                                             noise_seed=f"{self.seed}:{self.spec.udid}")  # fmt: skip
            truth = Truth(device_s=sum(t.device_s for t in truths), faults=fired)
            self.last_truths = truths
        else:
            result, truth = simulate(
                manifest, packed[0].inventory, packed[0].prof, facts=self._facts,
                state=self.state, noise_seed=f"{self.seed}:{self.spec.udid}",
                model_fault=packed[0].model_fault,
            )  # fmt: skip
            self.last_truths = [truth]
        if manifest.models is None and fails and result.error is not None:
            # Say which SIMULATED regression it is: the failure is stored with the run.
            why = f"{result.error.message} (SIMULATED compile_fails on {tonight.os_build})"
            error = RunnerError(kind=result.error.kind, message=why)
            result = result.model_copy(update={"error": error})
        truth.faults = fired
        truth.device_s += fixed_s
        total_s = truth.device_s
        self.busy_s += total_s
        try:
            if "disconnect" in fired:
                self._sleep(total_s / 2)
                self._log.append("usbmux: device detached during the run")
                raise DeviceGone(
                    f"{udid} disconnected during the run (SIMULATED)",
                    udid=udid,
                    hint="check the cable and hub; the run is retried on another device",
                )
            if "crash" in fired:
                self._sleep(total_s / 2)
                self._log.append("runner: EXC_BAD_ACCESS (SIGSEGV) in the Core ML runtime")
                self._crash_report = crash_report(self.identity)
                raise RunnerCrashed(
                    f"the runner crashed on {udid} (SIMULATED)",
                    udid=udid,
                    diagnostics=self.diagnostics().as_lines(),
                    hint="see the crash report; the run is retried on another device",
                )
            if "hang" in fired or total_s > timeout_s:
                # Instant mode reports the timeout at once; realtime waits it out (scaled).
                self._sleep(timeout_s if "hang" in fired else min(timeout_s, total_s))
                why = "the runner hung" if "hang" in fired else f"the batch needs {total_s:.1f}s"
                self._log.append(f"runner: no done marker after {timeout_s:g}s ({why})")
                raise RunnerTimeout(
                    f"no result from {udid} within {timeout_s:g}s: {why} (SIMULATED)",
                    udid=udid,
                    hint="raise the batch timeout or lower iterations",
                )
            self._sleep(total_s)
            if "malformed" in fired:
                # What a truncated result.json looks like to the driver's validation.
                self._read_result(result.model_dump_json()[:-40])
        finally:
            self._idle_since = time.monotonic()
        if "background" in fired:
            self._log.append("runner: the app left the foreground during the last slot")
            result = sent_to_background(result)
        self._log.append(f"runner: done in {total_s:.3f}s (simulated)")
        self.last_truth = truth
        # Built through the protocol's validating constructors: already a valid result.
        return result, truth

    def _packed_model(self, entry: ManifestModel, inventory: ModelInventory,
                      fired: set[str]) -> PackedModel:  # fmt: skip
        """A model of the launch: tonight's profile and the model fault it meets."""
        tonight = self.night
        prof = self.models.tonight(inventory, tonight, self.spec.udid)  # the agent tag aside
        fails = tonight.fails_to_compile(entry.filename, inventory.sha256)
        if fails:
            self._log.append(f"compile_fails on {tonight.os_build} (SIMULATED regression)")
        model_fault = (
            RunnerErrorKind.COMPILE
            if "compilefail" in fired or fails
            else RunnerErrorKind.LOAD
            if "loadfail" in fired
            else None
        )
        return PackedModel(inventory, prof, model_fault)

    def _read_result(self, raw: str) -> RunnerResult:
        """The runner's result.json, validated exactly as the real driver validates it."""
        try:
            return RunnerResult.model_validate_json(raw)
        except ValidationError as error:
            self._log.append(f"result.json (first 200 chars): {raw[:200]}")
            raise ProtocolError(
                f"result.json from {self.identity.udid} does not validate: "
                f"{error.errors()[0]['msg']} (SIMULATED)",
                hint="the raw result is in the diagnostics; the run is retried elsewhere",
            ) from error

    def _cool_down_between_runs(self) -> None:
        # Only realtime mode has real idle time between runs; instant stays deterministic.
        if self.time_mode == "realtime" and self._idle_since is not None:
            self.state.heat.idle((time.monotonic() - self._idle_since) * self.speed)

    def _sleep(self, seconds: float) -> None:
        if self.time_mode == "realtime" and seconds > 0:
            time.sleep(seconds / self.speed)

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceGone(
                f"{self.identity.udid} was closed (SIMULATED)",
                udid=self.identity.udid,
                hint="open the device again from the farm",
            )

    def diagnostics(self) -> Diagnostics:
        return Diagnostics(log_lines=list(self._log), crash_report=self._crash_report)

    def reboot(self) -> None:
        """A restart cools the device; the compiled-model cache lives on disk and stays."""
        self._check_open()
        self.reboots += 1
        self._sleep(REBOOT_S)
        self.state.heat.idle(float("inf"))
        self._log.append(f"rebooted at {datetime.now(UTC).isoformat()} (SIMULATED)")

    def close(self) -> None:
        self._closed = True


def build_farm(
    spec: str | Path,
    *,
    seed: int = 0,
    time_mode: str = "instant",
    speed: float = 1.0,
    agent: str | None = None,
) -> list[SimulatedDevice]:
    """Every device of a farm spec (string or YAML path); see docs/simulation.md. An
    agent's farm (``agent`` its name) has UDIDs of its own (``farm.agent_udid``)."""
    if time_mode not in TIME_MODES:
        raise UsageError(f"unknown time mode {time_mode!r}", hint="use instant or realtime")
    if not speed > 0 or speed == float("inf"):
        raise UsageError(f"speed {speed} must be a positive number", hint="e.g. --speed 10")
    return [
        SimulatedDevice(d, seed=seed, time_mode=time_mode, speed=speed, agent=agent)
        for d in parse_farm(spec)
    ]
