"""The Developer Disk Image (DDI): prepared ahead into a host cache, mounted from it.

pymobiledevice3's ``auto_mount`` downloads a missing image from a public GitHub repository
(doronz88/DeveloperDiskImage) synchronously, with no timeout, into one unlocked cache under
``~/.pymobiledevice3`` — and the driver used to call it inside a worker's event loop, where
several device workers could do it at once. So downloading is now a step of its own,
``anefarm devices prepare`` (:func:`prepare`: a file lock, a deadline, atomic writes), and
:func:`mount` only ever reads local files: when the image is missing it says what to run.
The download itself (the repository client, its deadline, atomic writes, its errors worded)
is ``ddi_download.py``; this module decides which image, where it is, and mounts it.

Layout of the cache (``<agent cache dir>/ddi`` unless told otherwise)::

    developer/<major.minor>/DeveloperDiskImage.dmg{,.signature}   iOS ≤ 16, one per version
    personalized/{Image.dmg,BuildManifest.plist,Image.trustcache}  iOS 17+, one for all
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymobiledevice3 import exceptions as pmd3
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.ddi_download import (
    SOURCE,
    Fetch,
    download,
    fetch_from_repository,
    first_line,
    is_http,
)
from agents.devices.ios.versions import os_tuple
from orchestrator.catalog.osversion import short
from orchestrator.errors import AnefarmError, ConfigError, DeviceNotReady, ServiceError

PERSONALIZED_MIN = (17, 0)  # iOS 17 replaced the per-version image by a personalized one
DOWNLOAD_TIMEOUT_S = 300.0  # a personalized image is ~20 MB; a slow office link takes minutes
# Where images may already be on a Mac, read-only: Xcode's own DeviceSupport (classic images
# of the iOS versions that Xcode knows) and pymobiledevice3's download cache. Module-level so
# tests can point them at empty directories.
XCODE_APP = Path("/Applications/Xcode.app")
PMD3_HOME = Path.home() / ".pymobiledevice3"
_DEVICE_SUPPORT = "Contents/Developer/Platforms/iPhoneOS.platform/DeviceSupport"
_CLASSIC_FILES = ("DeveloperDiskImage.dmg", "DeveloperDiskImage.dmg.signature")
_PERSONALIZED_FILES = ("Image.dmg", "BuildManifest.plist", "Image.trustcache")


@dataclass(frozen=True)
class ImageKey:
    """Which image a device needs: the classic one of its major.minor, or the personalized one."""

    version: str  # "16.7" for a classic image; "" for the personalized one (any iOS 17+)

    @property
    def personalized(self) -> bool:
        return not self.version

    @property
    def label(self) -> str:
        return "personalized image (iOS 17+)" if self.personalized else f"iOS {self.version} image"

    @property
    def files(self) -> tuple[str, ...]:
        return _PERSONALIZED_FILES if self.personalized else _CLASSIC_FILES

    def directory(self, cache: Path) -> Path:
        return cache / "personalized" if self.personalized else cache / "developer" / self.version


def image_for(os_version: str) -> ImageKey:
    """The image a device on ``os_version`` ("16.7.2", "17.4") mounts."""
    version = os_tuple(os_version)
    if not version or version[0] == 0:
        raise ConfigError(f"{os_version!r} is not an iOS version", hint="write it as 16.7 or 17.4")
    if version >= PERSONALIZED_MIN:
        return ImageKey("")
    return ImageKey(f"{version[0]}.{version[1] if len(version) > 1 else 0}")


def default_cache_dir() -> Path:
    """``<agent cache dir>/ddi``: where the agent looks and ``devices prepare`` writes."""
    from orchestrator.settings import load_settings

    return load_settings().resolved_agent_cache_dir / "ddi"


@dataclass(frozen=True)
class Found:
    where: str  # "anefarm cache", "Xcode", "pymobiledevice3 cache"
    paths: tuple[Path, ...]  # in the order of ImageKey.files


def locate(cache: Path, key: ImageKey) -> Found | None:
    """The image's local files, or None: anefarm's cache first, then what Xcode or an earlier
    pymobiledevice3 already put on this Mac (never written to by anefarm)."""
    candidates = [("anefarm cache", key.directory(cache))]
    if key.personalized:
        # pymobiledevice3 never uses Xcode's personalized image (a different layout); nor do we.
        candidates.append(("pymobiledevice3 cache", PMD3_HOME / "Xcode_iOS_DDI_Personalized"))
    else:
        candidates.append(("Xcode", XCODE_APP / _DEVICE_SUPPORT / key.version))
        candidates.append(
            ("pymobiledevice3 cache", PMD3_HOME / "Xcode.app" / _DEVICE_SUPPORT / key.version)
        )
    for where, directory in candidates:
        paths = tuple(directory / name for name in key.files)
        if all(path.is_file() and path.stat().st_size > 0 for path in paths):
            return Found(where, paths)
    return None


def prepare_command(key: ImageKey, os_version: str | None = None) -> str:
    version = key.version or (os_version and short(os_version)) or "17.0"
    return f"anefarm devices prepare --ios {version}"


# ---- preparing (the CLI, off any event loop) -------------------------------------------


@dataclass(frozen=True)
class Prepared:
    key: ImageKey
    found: Found
    downloaded: bool


def prepare(
    cache: Path,
    os_versions: Iterable[str],
    *,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
    fetch: Fetch | None = None,
    echo: Callable[[str], None] = lambda line: None,
    refresh: bool = False,
) -> list[Prepared]:
    """Make sure the images for ``os_versions`` are on this host, downloading what is missing.

    One lock for the whole cache: a second ``prepare`` (another command, another worker's
    host script) waits and then finds the images there, so each is downloaded once. Each
    download has ``timeout_s``; files appear only complete (written aside, then renamed).
    ``refresh`` downloads anefarm's copies again (a newer personalized image).
    """
    from orchestrator.errors import ArtifactError
    from orchestrator.modelkit.locking import sha_lock

    fetch = fetch or fetch_from_repository
    # Classic images first, oldest first: the order a person reads versions in.
    keys = sorted(
        {image_for(version) for version in os_versions},
        key=lambda key: (key.personalized, os_tuple(key.version)),
    )
    cache.mkdir(parents=True, exist_ok=True)
    # A waiter may sit behind every download of the holder, plus a margin.
    wait_s = timeout_s * max(len(keys), 1) + 60.0
    try:
        with sha_lock(cache, "ddi-cache", wait_s=wait_s):
            # Under the lock, staging folders are what a killed prepare left behind.
            for leftover in [*cache.glob("*/.*.partial"), *cache.glob("*/.*.old")]:
                shutil.rmtree(leftover, ignore_errors=True)
            return [_prepare_one(cache, key, fetch, timeout_s, echo, refresh) for key in keys]
    except ArtifactError as error:  # only the lock raises it here
        raise ServiceError(
            f"the disk image cache {cache} stayed locked for {wait_s:.0f}s",
            hint="another `anefarm devices prepare` seems hung: stop it and rerun",
        ) from error


def _prepare_one(
    cache: Path,
    key: ImageKey,
    fetch: Fetch,
    timeout_s: float,
    echo: Callable[[str], None],
    refresh: bool,
) -> Prepared:
    found = None if refresh else locate(cache, key)
    if found is not None:
        where = f"{found.where}: {found.paths[0].parent}"
        echo(f"{key.label}: already here, nothing to download ({where}){_build_note(found)}")
        return Prepared(key, found, downloaded=False)
    echo(f"{key.label}: downloading from {SOURCE} (timeout {timeout_s:.0f}s)…")
    directory = key.directory(cache)
    size = download(fetch, key, directory, timeout_s) / 1e6
    echo(f"{key.label}: cached in {directory} ({size:.1f} MB)")
    return Prepared(key, Found("anefarm cache", tuple(directory / n for n in key.files)), True)


def _build_note(found: Found) -> str:
    """For a personalized image older than the one this pymobiledevice3 expects (newer
    devices may be missing from its build manifest), how to fetch the current one."""
    import plistlib

    from pymobiledevice3.services.mobile_image_mounter import LATEST_DDI_BUILD_ID

    build = None
    for path in (path for path in found.paths if path.name == "BuildManifest.plist"):
        with contextlib.suppress(
            plistlib.InvalidFileException, ValueError, OSError, AttributeError
        ):
            build = plistlib.loads(path.read_bytes()).get("ProductBuildVersion")
    if build in (None, LATEST_DDI_BUILD_ID):
        return ""
    return f"; build {build}, pymobiledevice3 expects {LATEST_DDI_BUILD_ID}: --refresh fetches it"


# ---- mounting (the worker, on its event loop; reads local files only) -------------------


@contextlib.asynccontextmanager
async def open_mounter(provider: LockdownServiceProvider, key: ImageKey) -> AsyncIterator[Any]:
    """pymobiledevice3's image mounter for ``key`` (a seam: tests replace it)."""
    from pymobiledevice3.services.mobile_image_mounter import (
        DeveloperDiskImageMounter,
        PersonalizedImageMounter,
    )

    kind = PersonalizedImageMounter if key.personalized else DeveloperDiskImageMounter
    async with kind(lockdown=provider) as mounter:
        yield mounter


# The image cannot be mounted (a device gone, locked, etc. is errors.translate's to word).
_CANNOT_MOUNT = (
    pmd3.InvalidServiceError,
    pmd3.NotMountedError,
    pmd3.DeveloperDiskImageNotFoundError,
    pmd3.NoSuchBuildIdentityError,
    pmd3.MissingManifestError,
    pmd3.MessageNotSupportedError,
)


async def mount(provider: LockdownServiceProvider, cache: Path | None = None) -> None:
    """Mount the device's image from local files; an image already mounted is success.

    Never downloads. The personalized image still needs Apple's signing server (TSS) once
    per device and iOS build, unless the device kept its personalization manifest.
    """
    os_version = str(provider.product_version)
    udid = str(getattr(provider, "udid", "") or "device")
    key = image_for(os_version)
    cache = cache if cache is not None else default_cache_dir()
    try:
        async with open_mounter(provider, key) as mounter:
            if await mounter.is_image_mounted(mounter.IMAGE_TYPE):
                return  # the usual case after the first run since boot
            found = locate(cache, key)
            if found is None:
                raise _not_mounted(
                    udid,
                    f"the {key.label} is not prepared on this host",
                    f"run `{prepare_command(key, os_version)}`",
                )
            await mounter.mount(*found.paths)
    except pmd3.AlreadyMountedError:
        return
    except AnefarmError:
        raise
    except _CANNOT_MOUNT as error:
        fix = (
            "the device is newer than the image: run `anefarm devices prepare --refresh`, or "
            "upgrade pymobiledevice3"
            if isinstance(error, pmd3.NoSuchBuildIdentityError)
            else f"unlock the device and run `anefarm devices check {udid}`"
        )
        raise _not_mounted(
            udid, f"the device refused the {key.label} ({first_line(error)})", fix
        ) from error
    except Exception as error:
        if not (isinstance(error, pmd3.TSSError) or is_http(error)):
            raise  # the driver's translation words the rest (gone, locked, Developer Mode)
        # mount never downloads an image, so HTTP here is Apple's signing server
        # personalizing the image for this device: "run prepare" would not help.
        raise _not_mounted(
            udid,
            f"Apple's signing server did not sign the {key.label} ({first_line(error)})",
            "this Mac needs HTTPS access to gs.apple.com the first time an image is mounted "
            "on a device and iOS build",
        ) from error


def _not_mounted(udid: str, why: str, fix: str) -> DeviceNotReady:
    reason = f"Developer Disk Image is not mounted, {why}: {fix}"
    return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
