"""What a SIMULATED device's faults look like from the outside, worded as the real driver
and the Swift runner word them: readiness reasons, a crash report, the ``background`` fault's
interrupted setting, and the ``exception`` fault's plain driver bug.

Kept apart from ``simulated.py`` (which decides *when* a fault fires) so the texts a person
reads are in one place, beside the fault names of ``faults.py``.
"""

from __future__ import annotations

from agents.devices.base import DeviceIdentity, Readiness
from agents.devices.simulation.runner import RUNNER_VERSION
from agents.devices.simulation.thermal import TEMPERATURE_C
from orchestrator.protocol import RunnerErrorKind, RunnerResult, SettingResult, ThermalState
from orchestrator.stats import summarize

# One reason per readiness fault, as `anefarm devices check` words it for a real device.
READINESS = {
    "battery": "battery 4% and not charging: plug the device into a powered hub",
    "hot": "device temperature 46 °C is above the 40 °C limit: let it cool down",
    "unpaired": "not paired with this host: pair it in the provisioning step",
    "devmode": "Developer Mode is off: Settings → Privacy & Security → Developer Mode",
}
OVERHEATED = "thermal state critical after sustained load: let the device cool down"


def readiness(states: frozenset[str] | set[str], heat: ThermalState) -> Readiness:
    """The readiness of a device with these readiness faults and this heat of its own."""
    reasons = [READINESS[name] for name in sorted(states)]
    thermal = ThermalState.SERIOUS if "hot" in states else heat
    if thermal is ThermalState.CRITICAL and "hot" not in states:
        reasons.append(OVERHEATED)
    return Readiness(
        reasons=reasons,
        paired="unpaired" not in states,
        developer_mode="devmode" not in states,
        runner_version=RUNNER_VERSION,
        battery_percent=4.0 if "battery" in states else 100.0,
        charging="battery" not in states,
        temperature_c=46.0 if "hot" in states else TEMPERATURE_C[thermal],
        thermal_state=thermal,
    )


def crash_report(identity: DeviceIdentity) -> str:
    """The ``crash`` fault's report, shaped like the .ips text the real driver collects."""
    return (
        f"Incident: SIMULATED\nProcess: anefarm-runner\nHardware: {identity.product_type}\n"
        f"OS: {identity.os_version} ({identity.os_build})\n"
        "Exception Type: EXC_BAD_ACCESS (SIGSEGV)\nCrashed Thread: 0 (Espresso)"
    )


def sent_to_background(result: RunnerResult) -> RunnerResult:
    """The ``background`` fault, as the Swift harness records it: the app left the
    foreground half-way through the last setting's last slot, which keeps the samples
    taken before and says ``interrupted`` (the agent then reports an infra failure). In a
    packed launch that slot is the last model's."""
    if result.models:  # packed: the last model measured, its last setting
        last_model = result.models[-1]
        if last_model.error is not None or not last_model.settings:
            return result
        inner = sent_to_background(
            result.model_copy(update={"models": None, "settings": last_model.settings})
        )
        moved = last_model.model_copy(update={"settings": inner.settings})
        return result.model_copy(update={"models": [*result.models[:-1], moved]})
    if result.error is not None or not result.settings:
        return result
    last = result.settings[-1]
    kept = last.latencies_ms[: len(last.latencies_ms) // 2]
    message = (
        f"{last.compute_units}: the app left the foreground during its last slot (SIMULATED);"
        f" the {len(kept)} samples before it are kept"
    )
    interrupted = SettingResult.model_validate(
        last.model_dump()
        | {
            "latencies_ms": kept,
            "stats": summarize(kept) if kept else None,
            "error": {"kind": RunnerErrorKind.INTERRUPTED, "message": message},
        }
    )
    return result.model_copy(update={"settings": [*result.settings[:-1], interrupted]})


def driver_bug(udid: str) -> None:
    """What a bug in a driver looks like to the agent: not an anefarm error, so nothing
    classified it; the agent must still report it as a failed attempt."""
    raise RuntimeError(f"simulated driver bug on {udid} (SIMULATED)")
