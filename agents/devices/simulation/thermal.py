"""Heat of a simulated device: sustained load accumulates, idle time lets it leak away, and
the level sets ``ProcessInfo.thermalState`` and how much the chip throttles (assumptions).

A device that *runs hot* (a farm timeline's ``hot`` entry: a warm rack, a hub that heats the
phones, a case that keeps the heat in — SIMULATED) never cools below the level of its state:
its batches report that state at least, and throttle as it does."""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.protocol import ThermalState

COOLING_TAU_S = 300.0  # a phone takes minutes to shed heat (assumption)
# Heat level (≈ seconds of recent busy time) from which each state starts.
LEVELS = ((280.0, ThermalState.CRITICAL), (180.0, ThermalState.SERIOUS), (60.0, ThermalState.FAIR))
THROTTLE = {ThermalState.NOMINAL: 1.0, ThermalState.FAIR: 1.05, ThermalState.SERIOUS: 1.25,
            ThermalState.CRITICAL: 1.6}  # fmt: skip
TEMPERATURE_C = {ThermalState.NOMINAL: 30.0, ThermalState.FAIR: 36.0,
                 ThermalState.SERIOUS: 41.0, ThermalState.CRITICAL: 46.0}  # fmt: skip
# The states a device can be made to run hot at: critical is not one, a critical device
# refuses work (readiness), which the fault script's ``hot`` already simulates.
HOT_STATES = (ThermalState.FAIR, ThermalState.SERIOUS)
FLOOR = {state: limit for limit, state in LEVELS}


@dataclass
class Heat:
    level: float = 0.0
    floor: float = 0.0  # a device that runs hot never cools below this level

    def busy(self, seconds: float) -> None:
        """Seconds of load; heat leaks meanwhile, so continuous load saturates at τ."""
        self.level = max(self.floor, self.level * math.exp(-seconds / COOLING_TAU_S) + seconds)

    def idle(self, seconds: float) -> None:
        self.level = max(self.floor, self.level * math.exp(-seconds / COOLING_TAU_S))

    def run_hot(self, state: ThermalState | None) -> None:
        """From now on never below ``state``'s level (None: cools down fully again). The
        device's own heat above the old floor stays on top of the new one, so a device that
        cooled at the old floor (a new night) starts exactly at the new."""
        floor = FLOOR[state] if state is not None else 0.0
        self.level = max(floor, self.level + floor - self.floor)
        self.floor = floor

    @property
    def state(self) -> ThermalState:
        return next((s for limit, s in LEVELS if self.level >= limit), ThermalState.NOMINAL)

    @property
    def throttle(self) -> float:
        # Called for every simulated prediction: skip the table walk while cool.
        return 1.0 if self.level < LEVELS[-1][0] else THROTTLE[self.state]
