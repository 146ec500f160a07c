"""iOS versions and the transport boundaries they imply (devices.md, "Launching the runner")."""

from __future__ import annotations

from orchestrator.catalog.osversion import numeric_parts

RSD_MIN = (17, 0)  # developer services over RemoteServiceDiscovery from here
USERSPACE_TUNNEL_MIN = (17, 4)  # CoreDeviceProxy: a tunnel without root from here


def os_tuple(version: str) -> tuple[int, ...]:
    """ "17.3.1" → (17, 3, 1); non-numeric parts count as 0 (beta builds say odd things)."""
    return numeric_parts(version)
