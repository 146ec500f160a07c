"""Two agents given the same SIMULATED farm spec keep their devices apart.

Before, every agent's farm numbered its devices ``SIM-<class>-<n>`` from 0, so two agents
with ``iPhone11,8=2`` both had ``SIM-iPhone11-8-0``: one live-state key and one
``runs.device_udid`` for two devices. Each agent's UDIDs now carry a tag of its name and
seed, the same after a restart.
"""

from __future__ import annotations

import re

import pytest

from agents.device_worker import WorkerSpec, open_device
from agents.devices.simulated import build_farm
from agents.supervisor import FarmPlan, Supervisor
from orchestrator.settings import load_settings
from tests.pipeline.farm import Farm, farm

__all__ = ["farm"]

SPEC = "iPhone11,8=2,iPhone13,2=1"


def _udids(name: str, seed: int = 0, spec: str = SPEC) -> list[str]:
    devices = build_farm(spec, seed=seed, agent=name)
    try:
        return [d.identity.udid for d in devices]
    finally:
        for device in devices:
            device.close()


def test_two_agents_with_one_spec_have_different_udids_still_simulated() -> None:
    a, b = _udids("a"), _udids("b")
    assert len(set(a)) == len(a) == 3
    assert not set(a) & set(b)
    # The spec's own name leads, so a reader still sees the class and the number.
    assert all(re.fullmatch(r"SIM-iPhone1[13]-[28]-[01]-[0-9a-f]{6}", u) for u in a + b)
    device = build_farm(SPEC, agent="a")[0]
    assert device.identity.simulated and device.identity.name.endswith("(SIMULATED)")
    device.close()


def test_an_agent_finds_the_same_udids_after_a_restart_and_another_seed_differs() -> None:
    assert _udids("a") == _udids("a")
    assert _udids("a", seed=1) != _udids("a", seed=0)
    # A farm built in this process, with no agent, keeps the spec's own names.
    assert [d.identity.udid for d in build_farm(SPEC)] == [
        "SIM-iPhone11-8-0", "SIM-iPhone11-8-1", "SIM-iPhone13-2-0"
    ]  # fmt: skip


def test_the_worker_process_opens_the_device_its_supervisor_named(redis_url: str) -> None:
    """What the supervisor discovers is what its worker subprocess (and a spawned pool
    child, from the same WorkerSpec) finds again."""
    supervisor = Supervisor(load_settings(), broker_url=redis_url, name="host-a",
                            plan=FarmPlan(farm=SPEC, seed=3))  # fmt: skip
    slots = supervisor.discover()
    assert [s.udid for s in slots] == _udids("host-a", seed=3)
    spec = WorkerSpec(udid=slots[1].udid, agent="host-a", farm=SPEC, seed=3)
    device = open_device(spec)
    assert device.identity.udid == slots[1].udid
    device.close()
    supervisor.redis.close()


# Farm.at starts the agents' Celery workers
@pytest.mark.celery
def test_two_agents_with_the_same_spec_show_every_device_in_the_live_state(
    farm: Farm, samples
) -> None:
    farm.start_agent("iPhone11,8=2", name="agent-a")
    farm.start_agent("iPhone11,8=2", name="agent-b")
    live = farm.wait_devices(4)  # before: two keys for four devices, never four
    assert len({d.udid for d in live}) == 4
    assert {d.agent for d in live} == {"agent-a", "agent-b"}
    assert {d.udid for d in live if d.agent == "agent-a"} == set(
        _udids("agent-a", spec="iPhone11,8=2")
    )
    assert all(d.simulated for d in live)
