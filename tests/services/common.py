"""Helpers shared by the service fixtures, and the hook that marks tests by the services
they use.

A fixture that starts (or needs) a real service says so with ``@provides("redis")`` under
its ``@pytest.fixture``; every test whose fixture closure contains it gets that marker
(``redis``, ``postgres``, ``celery``: pyproject.toml), so ``-m "not postgres"`` deselects
exactly the tests that need PostgreSQL, however indirectly they reach it. A fixture that
picks a service at run time (``db_url``'s ``request.getfixturevalue``) marks its params
instead. Only tests that start a service in their body (``Farm.at`` starts Celery
workers) still need a hand-written marker.

The same hook puts the tests of a module that share a module-scoped fixture into one
``xdist_group``, so that ``--dist loadgroup`` builds that fixture once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

SERVICES = ("redis", "postgres", "celery")
_ATTRIBUTE = "anefarm_service"

F = TypeVar("F", bound=Callable[..., object])


def provides(service: str) -> Callable[[F], F]:
    """Mark a fixture function as one that needs ``service`` (put it under @pytest.fixture)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")

    def mark(function: F) -> F:
        setattr(function, _ATTRIBUTE, service)
        return function

    return mark


def services_of(item: pytest.Item) -> set[str]:
    """The services a test's fixture closure provides (every definition in effect)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # not a Python test function (doctest …): no fixtures
        return set()
    found = set()
    for name in item.fixturenames:  # type: ignore[attr-defined]
        for fixturedef in info.name2fixturedefs.get(name, ()):
            service = getattr(fixturedef.func, _ATTRIBUTE, None)
            if service:
                found.add(service)
    return found


def shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-scoped fixture (a browser, a profiled job …)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        defs and defs[-1].scope == "module"
        for name in item.fixturenames  # type: ignore[attr-defined]
        if (defs := info.name2fixturedefs.get(name))
    )


# tryfirst: xdist's own hook turns xdist_group marks into work units; it must see ours.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        for service in sorted(services_of(item) - have):
            item.add_marker(service)
        # Under `--dist loadgroup` (the Makefile) a module's tests that share a module-scoped
        # fixture run on one xdist worker, which builds it once instead of once per worker.
        if "xdist_group" not in have and shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


class _GroupSuffix:
    """pytest-xdist tells a worker's groups to the controller as ``nodeid@group``, by
    setting ``item._nodeid``, which pytest 9.2 no longer reads (pytest-xdist#1386: every
    group silently split across workers). Until a release fixes it, put the suffix into the
    node id pytest reads, after xdist's hook, where xdist did not."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):  # set in xdist workers only
            return
        from _pytest.nodeid import NodeId

        for item in items:
            group = group_of(item)
            if group and not item.nodeid.endswith(f"@{group}") and hasattr(item, "_id"):
                item._id = NodeId.parse(f"{item.nodeid}@{group}")


def group_of(item: pytest.Item) -> str | None:
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")})  # fmt: skip
    return "_".join(names) or None


def stable_nodeid(item: pytest.Item) -> str:
    """The test's node id without the ``@group`` suffix loadgroup gives it."""
    group = group_of(item)
    return item.nodeid.removesuffix(f"@{group}") if group else item.nodeid


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_GroupSuffix(), "anefarm-xdist-group-suffix")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_service(reason: str) -> NoReturn:
    """Skip locally, fail in CI: a suite must never go green by skipping in CI."""
    if in_ci():
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
