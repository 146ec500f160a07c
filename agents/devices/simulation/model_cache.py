"""The models a SIMULATED device has seen, and what each costs it on a given night.

A worker sees the same models again and again: each is inspected once per sha256
(coremltools costs 10-100 ms a model) and profiled once per (sha256, the ops the night
moves off the ANE). On a night of the farm's timeline a model's profile is slowed by the
night's SIMULATED regression and by run-to-run noise, drawn afresh for each run of the
model that night (the draws are counted here, so a rerun of the night draws alike).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

from agents.devices.simulation.chips import ChipModel
from agents.devices.simulation.nights import NightState
from agents.devices.simulation.profile import ModelProfile, profile, scaled
from orchestrator.modelkit.inventory import ModelInventory


class ModelCache:
    def __init__(self, chip: ChipModel) -> None:
        self.chip = chip
        self.inventories: dict[str, ModelInventory] = {}  # by sha256
        self._profiles: dict[tuple[str, frozenset[str]], ModelProfile] = {}
        self._draws: Counter[tuple[str, date]] = Counter()  # runs per (model, night)

    def inventory(self, sha256: str, path: Path) -> ModelInventory:
        """The model at ``path`` (whose sha256 the manifest gives), inspected once."""
        inventory = self.inventories.get(sha256)
        if inventory is None:
            from orchestrator.modelkit import inspect_model

            inventory = self.inventories[sha256] = inspect_model(path)
        return inventory

    def profile(self, inventory: ModelInventory, night: NightState) -> ModelProfile:
        """The model on this chip with the ops ``night`` moves off the ANE (none without a
        timeline): placement and unscaled timing."""
        key = (inventory.sha256, night.off_ane)
        prof = self._profiles.get(key)
        if prof is None:
            why = f"moved off the ANE on {night.os_build} (SIMULATED regression)"
            prof = self._profiles[key] = profile(
                inventory.ops, self.chip, off_ane=night.off_ane, why=why
            )
        return prof

    def tonight(self, inventory: ModelInventory, night: NightState, udid: str) -> ModelProfile:
        """The profile one run of the model gets on ``night``: its SIMULATED slow-down and
        the run-to-run noise of a real farm; as profiled when the batch names no night."""
        prof = self.profile(inventory, night)
        if night.night is None:
            return prof
        draw = self._draws[(inventory.sha256, night.night)]
        self._draws[(inventory.sha256, night.night)] += 1
        return scaled(prof, night.slow * night.run_to_run(udid, inventory.sha256, draw))
