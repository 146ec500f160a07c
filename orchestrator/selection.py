"""Which device classes a job runs on: a selector, read against what the farm has.

``FarmView`` is the farm as the coordinator sees it (classes with a live device now, and
those seen recently); ``resolve_classes`` turns a selector into classes, the ones among
them whose runs must wait for a device, and the warnings a person should read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import catalog
from orchestrator.errors import UsageError
from orchestrator.protocol import livestate
from orchestrator.store import models as db

LIVE = "live"  # selector: the device classes that have a live device right now


@dataclass(frozen=True)
class FarmView:
    """The device classes the farm has: ``live`` (a ready or busy device with a heartbeat
    now), ``known`` (live, or a device seen in the last ``KNOWN_FOR``)."""

    live: frozenset[str]
    known: frozenset[str]

    @classmethod
    def of(cls, live: set[str] | frozenset[str], known: set[str] | None = None) -> FarmView:
        return cls(frozenset(live), frozenset(live | (known or set())))


# A device not seen for a week is no longer "the farm's": selectors by chip skip it.
KNOWN_FOR = timedelta(days=7)


def farm_view(client: redis.Redis | None, sessions: sessionmaker[Session] | None) -> FarmView:
    """What the farm has, from live heartbeats and (with ``sessions``) recent devices."""
    live: set[str] = set()
    if client is not None:
        live = {
            d.product_type
            for d in livestate.live_devices(client)
            if d.state != livestate.DeviceState.QUARANTINED
        }
    known: set[str] = set()
    if sessions is not None:
        since = datetime.now(UTC) - KNOWN_FOR
        with sessions() as session:
            known = set(
                session.scalars(select(db.Device.product_type).where(db.Device.last_seen >= since))
            )
    return FarmView.of(live, known)


def resolve_classes(
    selector: str, farm: FarmView | None, *, device_wait_s: float = 12 * 3600.0
) -> tuple[list[catalog.DeviceModel], set[str], list[str]]:
    """Device classes for a selector: (classes, those with no live device, warnings).

    With no farm to ask (``farm`` None) the catalog answers alone. Otherwise a named
    ProductType is always taken (its runs wait for a device when none is live), while a
    chip, comparison, glob or ``all`` means the classes of that kind *the farm has*: a
    farm of three phones does not queue a run for each of the catalog's 114 classes.
    """
    if selector.strip().lower() == LIVE:
        live = sorted(farm.live) if farm else []
        if not live:
            raise UsageError(
                "no live devices: no agent is running",
                hint="start `anefarm agent`, or choose classes with --devices (work then waits)",
            )
        return [catalog.device(pt) for pt in live], set(), []
    terms = catalog.select_terms(selector)
    if farm is None:
        chosen = {d.product_type: d for _, found in terms for d in found}
        return _in_catalog_order(chosen), set(), []
    chosen, skipped = {}, []
    for term, found in terms:
        if term in catalog.DEVICES:
            chosen[term] = found[0]
            continue
        kept = [d for d in found if d.product_type in farm.known]
        chosen.update((d.product_type, d) for d in kept)
        if not kept:
            skipped.append(term)
    if not chosen:
        has = ", ".join(sorted(farm.known)) or "no devices at all"
        raise UsageError(
            f"no device of the farm matches {selector!r} (the farm has: {has})",
            hint="start an agent with such a device, or name a ProductType (e.g. iPhone13,2)"
            " to queue work that waits for one",
        )
    classes = _in_catalog_order(chosen)
    waiting = {c.product_type for c in classes if c.product_type not in farm.live}
    warnings = [f"{term}: no device of the farm matches it; skipped" for term in skipped]
    hours = device_wait_s / 3600
    warnings += [
        f"no live device for {c.product_type} ({c.chip}): its runs wait for one"
        f" (at most {hours:g} h)"
        for c in classes
        if c.product_type in waiting
    ]
    return classes, waiting, warnings


def _in_catalog_order(chosen: dict[str, catalog.DeviceModel]) -> list[catalog.DeviceModel]:
    order = list(catalog.DEVICES)
    return sorted(chosen.values(), key=lambda d: order.index(d.product_type))
