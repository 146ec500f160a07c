"""The developer-service fakes must keep the installed pymobiledevice3 signatures: an
upgrade that renames a parameter or changes a default fails here, not on a device."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.crash_reports import CrashReportsManager
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

from tests.ios.fake_developer import FakeContainer, FakeCrashReports, FakeProcessControl

PAIRS = [
    (FakeContainer, AfcService, ["makedirs", "push", "set_file_contents", "get_file_contents",
                                 "exists", "rm", "close"]),
    (FakeProcessControl, ProcessControl, ["launch", "kill",
                                          "process_identifier_for_bundle_identifier"]),
    (FakeCrashReports, CrashReportsManager, ["ls", "pull"]),
]  # fmt: skip


def _shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    function = inspect.unwrap(function)
    parameters = list(inspect.signature(function).parameters.values())[1:]  # drop self
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize(
    ("fake", "real", "method"),
    [(fake, real, method) for fake, real, methods in PAIRS for method in methods],
)
def test_fake_matches_installed_pymobiledevice3(fake: type, real: type, method: str) -> None:
    real_method = getattr(real, method)
    assert inspect.iscoroutinefunction(inspect.unwrap(real_method)), f"{real.__name__}.{method}"
    assert inspect.iscoroutinefunction(getattr(fake, method))
    assert _shape(getattr(fake, method)) == _shape(real_method)


def test_a_changed_signature_would_be_noticed() -> None:
    async def renamed(self: object, path: str) -> None: ...

    assert _shape(renamed) != _shape(AfcService.makedirs)
