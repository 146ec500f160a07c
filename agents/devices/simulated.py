"""SIMULATED devices: any ProductType of the catalog behind the Device interface.

They flow through the very same pipeline as real devices; every identity and result says
``simulated``. Deterministic for a seed. Time is ``instant`` (durations are reported,
nothing sleeps) or ``realtime`` (sleeps the simulated duration ÷ ``speed``).
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

from agents.devices.base import DeviceIdentity, Diagnostics, Readiness
from agents.devices.simulation.farm import DeviceSpec, Fault, parse_farm
from agents.devices.simulation.runner import DeviceState, Truth, simulate
from orchestrator import catalog
from orchestrator.errors import (
    DeviceGone,
    DeviceNotReady,
    ProtocolError,
    RunnerCrashed,
    RunnerTimeout,
)
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import DeviceFacts, RunnerManifest, RunnerResult

LAUNCH_S = 1.5  # launching the runner app (assumption)
USB2_MBS = 35.0  # effective USB 2 transfer rate for pushing the model
READY_REASONS = {
    "battery": "battery 4% and not charging: plug the device into a powered hub",
    "hot": "device temperature 46 °C is above the 40 °C limit: let it cool down",
    "unpaired": "not paired with this host: run `anefarm devices pair UDID`",
    "devmode": "Developer Mode is off: Settings → Privacy & Security → Developer Mode",
}


def os_build(product_type: str, os_version: str) -> str:
    """A plausible, deterministic build string (simulated: not a real Apple build)."""
    digest = hashlib.sha256(f"{product_type}@{os_version}".encode()).hexdigest()
    major = int(os_version.split(".", maxsplit=1)[0])
    return f"{major + 4}{chr(ord('A') + int(digest[0], 16) % 8)}{int(digest[1:4], 16) % 400}"


class SimulatedDevice:
    def __init__(
        self, spec: DeviceSpec, *, seed: int = 0, time_mode: str = "instant", speed: float = 1.0
    ):
        model = catalog.device(spec.product_type)
        self.spec = spec
        self.seed = seed
        self.time_mode = time_mode
        self.speed = speed
        self._identity = DeviceIdentity(
            udid=spec.udid, product_type=spec.product_type, chip=model.chip,
            os_version=spec.os_version, os_build=os_build(spec.product_type, spec.os_version),
            name=f"{model.name} #{spec.index} (SIMULATED)", simulated=True,
        )  # fmt: skip
        self.state = DeviceState()
        self.runs = 0
        self.last_truth: Truth | None = None
        self._last_log: list[str] = []
        self._inventories: dict[Path, ModelInventory] = {}
        self._rng = random.Random(f"faults:{seed}:{spec.udid}")

    @property
    def identity(self) -> DeviceIdentity:
        return self._identity

    def readiness(self) -> Readiness:
        reasons = [READY_REASONS[f.name] for f in self.spec.faults if f.name in READY_REASONS]
        return Readiness(reasons=reasons, runner_version="sim-1", battery_percent=80.0, charging=True,
                         paired="unpaired" not in {f.name for f in self.spec.faults},
                         developer_mode="devmode" not in {f.name for f in self.spec.faults})  # fmt: skip

    def _fires(self, fault: Fault) -> bool:
        if fault.at_run is not None:
            return fault.at_run == self.runs
        if fault.probability is not None:
            return self._rng.random() < fault.probability
        return True

    def _sleep(self, seconds: float) -> None:
        if self.time_mode == "realtime" and seconds > 0:
            time.sleep(seconds / self.speed)

    def run(self, manifest: RunnerManifest, model_path: Path, timeout_s: float) -> RunnerResult:
        self.runs += 1
        udid = self.identity.udid
        ready = self.readiness()
        if not ready.ready:
            raise DeviceNotReady("; ".join(ready.reasons), udid=udid, reasons=ready.reasons)
        fired = {f.name for f in self.spec.faults if f.name not in READY_REASONS and self._fires(f)}
        self._last_log = [f"runner: batch {manifest.batch_id} launched"]
        from orchestrator.modelkit import inspect_model

        # Inspecting costs milliseconds per call; a worker sees the same models again and again.
        inventory = self._inventories.get(model_path)
        if inventory is None:
            inventory = self._inventories[model_path] = inspect_model(model_path)
        push_s = inventory.size_bytes / (USB2_MBS * 1e6)
        facts = DeviceFacts(product_type=self.identity.product_type, os_version=self.identity.os_version,
                            os_build=self.identity.os_build)  # fmt: skip
        result, truth, run_s = simulate(manifest, inventory, chip=self.identity.chip, facts=facts,
                                        state=self.state, seed=self.seed,
                                        compile_fails="compilefail" in fired)  # fmt: skip
        total_s = LAUNCH_S + push_s + run_s
        if "disconnect" in fired:
            self._sleep(total_s / 2)
            raise DeviceGone(f"{udid} disconnected during the run (SIMULATED)", udid=udid)
        if "crash" in fired:
            self._sleep(total_s / 2)
            self._last_log.append("runner: EXC_BAD_ACCESS in the Core ML runtime (SIMULATED)")
            raise RunnerCrashed(f"the runner crashed on {udid} (SIMULATED)", udid=udid,
                                diagnostics=list(self._last_log))  # fmt: skip
        if "hang" in fired or total_s > timeout_s:
            self._sleep(min(timeout_s, total_s))
            self._last_log.append("runner: no done marker")
            raise RunnerTimeout(
                f"no result from {udid} within {timeout_s:.0f}s (SIMULATED)", udid=udid
            )
        self._sleep(total_s)
        if "malformed" in fired:
            raise ProtocolError(
                f"result.json from {udid} does not validate: truncated JSON (SIMULATED)"
            )
        self.last_truth = truth
        self._last_log.append("runner: done")
        return result

    def diagnostics(self) -> Diagnostics:
        crashed = any("EXC_BAD_ACCESS" in line for line in self._last_log)
        return Diagnostics(
            log_lines=list(self._last_log),
            crash_report="EXC_BAD_ACCESS (SIGSEGV) in runner (SIMULATED)" if crashed else None,
        )

    def reboot(self) -> None:
        self.state = DeviceState()  # caches and heat are gone after a restart
        self._sleep(30.0)

    def close(self) -> None:
        return None


def build_farm(
    spec: str | Path, *, seed: int = 0, time_mode: str = "instant", speed: float = 1.0
) -> list[SimulatedDevice]:
    if time_mode not in {"instant", "realtime"}:
        from orchestrator.errors import UsageError

        raise UsageError(f"unknown time mode {time_mode!r}", hint="instant or realtime")
    return [
        SimulatedDevice(d, seed=seed, time_mode=time_mode, speed=speed) for d in parse_farm(spec)
    ]
