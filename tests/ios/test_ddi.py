"""Developer Disk Images: `anefarm devices prepare` fetches them ahead (lock, timeout, one-line
errors, idempotent) and `ddi.mount` only reads the cache, saying what to run when it misses.

Nothing here touches the network: the download boundary is pymobiledevice3's repository
client's ``_get_blob(path)``, replaced by :class:`FakeRawGithub`, which keeps its contract
(the payload's bytes; None for a path not published, as its 404; ``requests``' own
ConnectionError without a network; GithubRateLimitExceededError when throttled).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from developer_disk_image.exceptions import GithubRateLimitExceededError
from developer_disk_image.repo import DeveloperDiskImageRepository
from pymobiledevice3.exceptions import (
    AlreadyMountedError,
    InvalidServiceError,
    NoSuchBuildIdentityError,
    TSSError,
)
from pymobiledevice3.services import mobile_image_mounter

from agents.devices.ios import ddi
from orchestrator.errors import DeviceNotReady, ServiceError
from tests.ios.conftest import run_cli

PERSONALIZED = "PersonalizedImages/Xcode_iOS_DDI_Personalized"
PUBLISHED = {
    "DeveloperDiskImages/16.7/DeveloperDiskImage.dmg": b"dmg 16.7",
    "DeveloperDiskImages/16.7/DeveloperDiskImage.dmg.signature": b"sig 16.7",
    "DeveloperDiskImages/15.8/DeveloperDiskImage.dmg": b"dmg 15.8",
    "DeveloperDiskImages/15.8/DeveloperDiskImage.dmg.signature": b"sig 15.8",
    f"{PERSONALIZED}/Image.dmg": b"personalized dmg",
    f"{PERSONALIZED}/BuildManifest.plist": b"manifest",
    f"{PERSONALIZED}/Image.dmg.trustcache": b"trustcache",
}


class FakeRawGithub:
    """raw.githubusercontent.com as ``DeveloperDiskImageRepository._get_blob`` sees it."""

    def __init__(self, mode: str = "ok", log: Path | None = None, delay_s: float = 0.0) -> None:
        self.mode = mode  # ok | offline | hang | throttled
        self.calls: list[str] = []
        self.log = log  # shared by processes: one line per request
        self.delay_s = delay_s
        self.release = threading.Event()

    def as_method(self) -> Any:
        """A plain function, so that it binds to the repository like the method it replaces."""

        def _get_blob(repo: DeveloperDiskImageRepository, path: str) -> bytes | None:
            return self.get_blob(repo, path)

        return _get_blob

    def get_blob(self, repo: DeveloperDiskImageRepository, path: str) -> bytes | None:
        self.calls.append(path)
        if self.log is not None:
            with self.log.open("a") as log:
                log.write(f"{os.getpid()} {path}\n")
        if self.mode == "offline":
            raise requests.exceptions.ConnectionError(
                f"HTTPSConnectionPool(host='raw.githubusercontent.com', port=443): {path}"
            )
        if self.mode == "hang":
            self.release.wait(30)  # requests.get without a timeout, on a dead link
            raise requests.exceptions.ConnectionError("released")
        if self.mode == "throttled":
            raise GithubRateLimitExceededError("GitHub: rate limit exceeded. Wait until 11:00")
        time.sleep(self.delay_s)
        return PUBLISHED.get(path)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeRawGithub]:
    fake = FakeRawGithub()
    monkeypatch.setattr(DeveloperDiskImageRepository, "_get_blob", fake.as_method())
    # No image of this machine's own Xcode or ~/.pymobiledevice3 may count.
    monkeypatch.setattr(ddi, "XCODE_APP", tmp_path / "Xcode.app")
    monkeypatch.setattr(ddi, "PMD3_HOME", tmp_path / "pmd3-home")
    monkeypatch.setenv("ANEFARM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANEFARM_AGENT_CACHE_DIR", raising=False)
    yield fake
    fake.release.set()


def test_image_for_versions() -> None:
    assert ddi.image_for("16.7.2").version == "16.7"
    assert ddi.image_for("15.8").directory(Path("/c")) == Path("/c/developer/15.8")
    assert ddi.image_for("17.4.1").personalized and ddi.image_for("18.1").personalized
    assert ddi.prepare_command(ddi.image_for("17.4.1"), "17.4.1") == (
        "anefarm devices prepare --ios 17.4"
    )


def test_prepare_downloads_then_finds_them_cached(
    github: FakeRawGithub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "home" / "agent-cache" / "ddi"  # the default, where the agent looks
    assert run_cli("devices", "prepare", "--ios", "16.7.2", "--ios", "17.4") == 0
    out = capsys.readouterr().out
    assert "iOS 16.7 image: downloading from raw.githubusercontent.com" in out
    assert f"personalized image (iOS 17+): cached in {cache / 'personalized'}" in out
    assert "2 image(s) on this host, 2 downloaded now" in out
    assert (cache / "developer/16.7/DeveloperDiskImage.dmg").read_bytes() == b"dmg 16.7"
    assert (cache / "personalized/Image.trustcache").read_bytes() == b"trustcache"
    assert not [p for p in cache.rglob("*") if "partial" in p.name]
    requests_made = len(github.calls)
    assert requests_made == 5

    assert run_cli("devices", "prepare", "--ios", "16.7", "--ios", "17.0") == 0
    out = capsys.readouterr().out
    assert "iOS 16.7 image: already here, nothing to download (anefarm cache" in out
    assert "0 downloaded now" in out
    assert len(github.calls) == requests_made  # no request at all the second time


def test_prepare_uses_an_image_xcode_already_has(github: FakeRawGithub, tmp_path: Path) -> None:
    support = tmp_path / "Xcode.app" / ddi._DEVICE_SUPPORT / "15.8"
    support.mkdir(parents=True)
    (support / "DeveloperDiskImage.dmg").write_bytes(b"xcode's")
    (support / "DeveloperDiskImage.dmg.signature").write_bytes(b"sig")
    [prepared] = ddi.prepare(tmp_path / "c", ["15.8.3"])
    assert not prepared.downloaded and prepared.found.where == "Xcode"
    assert github.calls == []


@pytest.mark.parametrize(
    ("mode", "needles"),
    [
        (
            "offline",
            ["cannot download the iOS 16.7 image: no network", "raw.githubusercontent.com"],
        ),
        ("hang", ["timed out after 1s", "raise --timeout"]),
        (
            "throttled",
            ["GitHub refused the download: GitHub: rate limit exceeded", "wait and rerun"],
        ),
    ],
)
def test_prepare_without_network_is_one_line_and_exit_1(
    github: FakeRawGithub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    needles: list[str],
) -> None:
    github.mode = mode
    started = time.monotonic()
    code = run_cli("devices", "prepare", "--ios", "16.7", "--cache", str(tmp_path / "c"),
                   "--timeout", "1")  # fmt: skip
    assert time.monotonic() - started < 10
    captured = capsys.readouterr()
    assert code == 1, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("anefarm: error: "), captured.err
    assert lines[0].endswith(")")  # the hint
    for needle in needles:
        assert needle in lines[0]
    assert "iOS 16.7 image: downloading" in captured.out  # progress before the failure
    assert ddi.locate(tmp_path / "c", ddi.image_for("16.7")) is None  # nothing half-written


def test_prepare_an_unpublished_version_and_bad_arguments(
    github: FakeRawGithub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("devices", "prepare", "--ios", "16.9", "--cache", str(tmp_path)) == 1
    assert "has no iOS 16.9 image" in capsys.readouterr().err
    assert run_cli("devices", "prepare", "--ios", "banana") == 2
    assert "'banana' is not an iOS version" in capsys.readouterr().err
    github.calls.clear()
    with pytest.raises(ServiceError, match="no network"):
        github.mode = "offline"
        ddi.prepare(tmp_path / "c", ["17.4"], timeout_s=5)


def _prepare_in_child(cache: str, log: str) -> None:
    fake = FakeRawGithub(log=Path(log), delay_s=0.3)
    DeveloperDiskImageRepository._get_blob = fake.as_method()
    ddi.prepare(Path(cache), ["16.7"], timeout_s=30)


def test_concurrent_prepares_download_once(github: FakeRawGithub, tmp_path: Path) -> None:
    cache, log = tmp_path / "c", tmp_path / "requests.log"
    context = multiprocessing.get_context("fork")  # fork: the children keep this test's patches
    children = [
        context.Process(target=_prepare_in_child, args=(str(cache), str(log))) for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    assert [child.exitcode for child in children] == [0, 0, 0]
    requests_made = log.read_text().splitlines()
    assert len(requests_made) == 2, requests_made  # image + signature, by one process only
    assert len({line.split()[0] for line in requests_made}) == 1
    assert (cache / "developer/16.7/DeveloperDiskImage.dmg").read_bytes() == b"dmg 16.7"


# ---- mount: the cache only --------------------------------------------------------------


class FakeMounter:
    def __init__(self, image_type: str, mounted: bool, failure: BaseException | None) -> None:
        self.IMAGE_TYPE = image_type
        self.mounted = mounted
        self.failure = failure
        self.mounts: list[tuple[Path, ...]] = []

    async def is_image_mounted(self, image_type: str) -> bool:
        assert image_type == self.IMAGE_TYPE
        return self.mounted

    async def mount(self, *paths: Path) -> None:
        if self.failure is not None:
            raise self.failure
        self.mounts.append(paths)
        self.mounted = True


@pytest.fixture
def mounter(monkeypatch: pytest.MonkeyPatch, github: FakeRawGithub) -> dict[str, Any]:
    state: dict[str, Any] = {"mounted": False, "failure": None, "made": []}

    class Opened:
        def __init__(self, provider: Any, key: ddi.ImageKey) -> None:
            kind = "Personalized" if key.personalized else "Developer"
            self.mounter = FakeMounter(kind, state["mounted"], state["failure"])
            state["made"].append(self.mounter)

        async def __aenter__(self) -> FakeMounter:
            return self.mounter

        async def __aexit__(self, *exc: object) -> None:
            return None

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("mount must never download")

    monkeypatch.setattr(ddi, "open_mounter", Opened)
    monkeypatch.setattr(mobile_image_mounter, "_download_developer_disk_image", no_download)
    monkeypatch.setattr(mobile_image_mounter, "fetch_personalized_ddi", no_download)
    return state


def provider(os_version: str) -> Any:
    return SimpleNamespace(product_version=os_version, udid="00008110-0000000000000017")


@pytest.mark.parametrize(
    ("os_version", "files"),
    [
        ("16.7.2", ("DeveloperDiskImage.dmg", "DeveloperDiskImage.dmg.signature")),
        ("17.4", ("Image.dmg", "BuildManifest.plist", "Image.trustcache")),
    ],
)
def test_mount_from_the_cache(
    mounter: dict[str, Any], github: FakeRawGithub, tmp_path: Path, os_version: str, files: tuple
) -> None:
    cache = tmp_path / "c"
    ddi.prepare(cache, [os_version])
    requests_made = len(github.calls)
    asyncio.run(ddi.mount(provider(os_version), cache))
    [made] = mounter["made"]
    [paths] = made.mounts
    assert [p.name for p in paths] == list(files)
    assert all(p.is_relative_to(cache) for p in paths)
    assert len(github.calls) == requests_made


def test_mount_without_the_image_says_what_to_run(
    mounter: dict[str, Any], github: FakeRawGithub, tmp_path: Path
) -> None:
    with pytest.raises(DeviceNotReady) as raised:
        asyncio.run(ddi.mount(provider("17.4.1"), tmp_path / "empty"))
    assert raised.value.reasons == [
        "Developer Disk Image is not mounted, the personalized image (iOS 17+) is not "
        "prepared on this host: run `anefarm devices prepare --ios 17.4`"
    ]
    assert github.calls == [] and mounter["made"][0].mounts == []


def test_mount_uses_the_default_cache_and_what_xcode_has(
    mounter: dict[str, Any], github: FakeRawGithub, tmp_path: Path
) -> None:
    ddi.prepare(ddi.default_cache_dir(), ["16.7"])  # under ANEFARM_HOME's agent cache
    asyncio.run(ddi.mount(provider("16.7.2")))
    support = tmp_path / "Xcode.app" / ddi._DEVICE_SUPPORT / "15.8"
    support.mkdir(parents=True)
    for name in ("DeveloperDiskImage.dmg", "DeveloperDiskImage.dmg.signature"):
        (support / name).write_bytes(b"from Xcode")
    asyncio.run(ddi.mount(provider("15.8"), tmp_path / "empty"))
    assert mounter["made"][1].mounts[0][0].is_relative_to(support)


def test_mount_already_mounted_is_success_without_any_image(
    mounter: dict[str, Any], tmp_path: Path
) -> None:
    mounter["mounted"] = True
    asyncio.run(ddi.mount(provider("17.4"), tmp_path / "empty"))
    mounter["mounted"], mounter["failure"] = False, AlreadyMountedError()
    ddi.prepare(tmp_path / "c", ["17.4"])
    asyncio.run(ddi.mount(provider("17.4"), tmp_path / "c"))  # lost a race: still mounted


FAILURES = [
    ("16.7", InvalidServiceError("no mounter", "U", "16.7"), "16.7 image (no mounter): unlock"),
    # A device newer than the personalized image's build manifest.
    ("18.1", NoSuchBuildIdentityError("no entry"), "(no entry): the device is newer than the"),
    # Apple's signing server (TSS): what a personalized mount still needs online.
    ("17.4", TSSError("refused: 94"), "did not sign the personalized image (iOS 17+) (refused"),
    ("17.4", requests.exceptions.ConnectionError("gs.apple.com"), "HTTPS access to gs.apple.com"),
]


@pytest.mark.parametrize(("os_version", "failure", "needle"), FAILURES)
def test_mount_failure_is_not_ready_with_a_reason(
    mounter: dict[str, Any], tmp_path: Path, os_version: str, failure: Exception, needle: str
) -> None:
    mounter["failure"] = failure
    ddi.prepare(tmp_path / "c", [os_version])
    with pytest.raises(DeviceNotReady, match="Developer Disk Image is not mounted, ") as raised:
        asyncio.run(ddi.mount(provider(os_version), tmp_path / "c"))
    assert needle in raised.value.reasons[0]


def test_refresh_downloads_again_and_leftovers_are_cleaned(
    github: FakeRawGithub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import plistlib

    cache = tmp_path / "c"
    old = plistlib.dumps({"ProductBuildVersion": "21A000"})
    PUBLISHED[f"{PERSONALIZED}/BuildManifest.plist"] = old
    try:
        ddi.prepare(cache, ["17.4"])
    finally:
        PUBLISHED[f"{PERSONALIZED}/BuildManifest.plist"] = b"manifest"
    leftover = cache / "developer" / ".16.7.dead.partial"  # a prepare killed mid-write
    (cache / "developer" / ".16.7.dead.old").mkdir(parents=True)
    leftover.mkdir(parents=True)
    assert run_cli("devices", "prepare", "--ios", "17.4", "--cache", str(cache)) == 0
    out = capsys.readouterr().out
    assert (
        f"build 21A000, pymobiledevice3 expects {mobile_image_mounter.LATEST_DDI_BUILD_ID}" in out
    )
    assert "--refresh fetches it" in out and not leftover.exists()
    assert [p.name for p in (cache / "developer").iterdir()] == []
    calls = len(github.calls)
    assert run_cli("devices", "prepare", "--ios", "17.4", "--cache", str(cache), "--refresh") == 0
    assert len(github.calls) == calls + 3
    assert (cache / "personalized/BuildManifest.plist").read_bytes() == b"manifest"
    assert sorted(p.name for p in cache.iterdir()) == ["developer", "personalized"]  # swapped
