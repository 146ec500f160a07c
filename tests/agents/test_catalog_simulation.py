"""The catalog and the simulation stay in step: a chip or device generation added to
``orchestrator/catalog/__init__.py`` must also get its rates in ``agents/devices/simulation/chips.py``
(else the simulator raises KeyError only when a farm with that device first runs a batch)."""

from __future__ import annotations

import math
from collections.abc import Container

import pytest

from agents.devices.simulated import build_farm
from agents.devices.simulation import chips as rates
from orchestrator import catalog
from tests.agents.models import conv_net, manifest


@pytest.mark.parametrize("chip", sorted(catalog.CHIPS))
def test_every_catalog_chip_has_simulation_rates(chip: str) -> None:
    tables: list[tuple[str, Container[str]]] = [
        ("GPU_TFLOPS", rates.GPU_TFLOPS),
        ("CPU_GFLOPS", rates.CPU_GFLOPS),
        ("BANDWIDTH_GBS", rates.BANDWIDTH_GBS),
    ]
    missing = [table for table, values in tables if chip not in values]
    if catalog.CHIPS[chip].ane_tops is None and chip not in rates.UNPUBLISHED_TOPS:
        missing.append("UNPUBLISHED_TOPS (Apple published no TOPS for it)")
    assert not missing, f"{chip}: no entry in {', '.join(missing)} of {rates.__file__}"
    model = rates.chip_model(chip)
    assert model.name == chip and model.generation == catalog.CHIPS[chip].generation
    for unit in rates.ALL_UNITS_ORDER:
        assert math.isfinite(model.flops_per_ms(unit)) and model.flops_per_ms(unit) > 0, unit
    assert model.bandwidth_gbs > 0


def test_the_rate_tables_name_only_catalog_chips() -> None:
    for table in (rates.GPU_TFLOPS, rates.CPU_GFLOPS, rates.BANDWIDTH_GBS, rates.UNPUBLISHED_TOPS):
        assert set(table) <= set(catalog.CHIPS), set(table) - set(catalog.CHIPS)


@pytest.mark.parametrize("product_type", sorted(catalog.DEVICES))
def test_every_catalog_device_is_built_by_build_farm_and_runs_a_batch(product_type: str) -> None:
    model = catalog.device(product_type)
    oldest, newest = build_farm(f"{product_type}@{model.min_os}=1,{product_type}=1", seed=0)
    assert oldest.identity.os_version == model.min_os
    assert newest.identity.os_version == model.newest_os()
    for device in (oldest, newest):
        assert device.identity.product_type == product_type
        assert device.chip == rates.chip_model(model.chip)
    # The rates are used once a batch runs: one small ML program on the newest OS.
    net = conv_net(layers=2, size=32, channels=8)
    result, _truth = newest.simulate_batch(manifest(net, iterations=5, warmup=1), net, 600)
    assert result.settings and all(s.latencies_ms for s in result.settings), result
