"""Heat of a simulated device: sustained load accumulates, idle time lets it leak away, and
the level sets ``ProcessInfo.thermalState`` and how much the chip throttles (assumptions)."""

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


@dataclass
class Heat:
    level: float = 0.0

    def busy(self, seconds: float) -> None:
        """Seconds of load; heat leaks meanwhile, so continuous load saturates at τ."""
        self.level = self.level * math.exp(-seconds / COOLING_TAU_S) + seconds

    def idle(self, seconds: float) -> None:
        self.level *= math.exp(-seconds / COOLING_TAU_S)

    @property
    def state(self) -> ThermalState:
        return next((s for limit, s in LEVELS if self.level >= limit), ThermalState.NOMINAL)

    @property
    def throttle(self) -> float:
        # Called for every simulated prediction: skip the table walk while cool.
        return 1.0 if self.level < LEVELS[-1][0] else THROTTLE[self.state]
