"""Downloading a Developer Disk Image from the public repository pymobiledevice3 uses
(doronz88/DeveloperDiskImage), for ``ddi.prepare`` only: the worker never downloads.

The repository client sets no timeout and writes nowhere itself, so each download runs on
a thread abandoned after a deadline, the files are written aside and renamed into place
(a worker mounting sees the whole image or none of it), and the client's errors become one
anefarm error a person can act on (offline, rate-limited, a version it lacks).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymobiledevice3 import exceptions as pmd3

from orchestrator.errors import AnefarmError, ConfigError, ServiceError

if TYPE_CHECKING:
    from agents.devices.ios.ddi import ImageKey

SOURCE = "raw.githubusercontent.com/doronz88/DeveloperDiskImage"
# Which image's files to fetch (file name → bytes): `fetch_from_repository` or a test's fake.
Fetch = Callable[["ImageKey"], dict[str, bytes]]


def fetch_from_repository(key: ImageKey) -> dict[str, bytes]:
    """One image through pymobiledevice3's own repository client (file name → bytes). Raises
    what the client raises (``DeveloperDiskImageException``, ``requests`` errors offline), and
    ``DeveloperDiskImageNotFoundError`` for a version it lacks, as ``auto_mount`` does."""
    from developer_disk_image.repo import DeveloperDiskImageRepository

    repo = DeveloperDiskImageRepository.create()
    if key.personalized:
        image = repo.get_personalized_disk_image()
        blobs: dict[str, bytes | None] = dict(
            zip(key.files, (image.image, image.build_manifest, image.trustcache), strict=True)
        )
    else:
        classic = repo.get_developer_disk_image(key.version)
        if classic is None:
            raise pmd3.DeveloperDiskImageNotFoundError(key.version)
        blobs = dict(zip(key.files, (classic.image, classic.signature), strict=True))
    missing = [name for name, blob in blobs.items() if not blob]
    if missing:
        raise pmd3.DeveloperDiskImageNotFoundError(
            f"{key.label}: {', '.join(missing)} not published"
        )
    return {name: blob for name, blob in blobs.items() if blob}


def download(fetch: Fetch, key: ImageKey, directory: Path, timeout_s: float) -> int:
    """``fetch(key)`` within ``timeout_s``, its files written atomically into ``directory``;
    the bytes written."""
    blobs = _with_deadline(functools.partial(fetch, key), timeout_s, key)
    _write_atomically(directory, blobs, key)
    return sum(len(blob) for blob in blobs.values())


def _with_deadline(
    call: Callable[[], dict[str, bytes]], timeout_s: float, key: ImageKey
) -> dict[str, bytes]:
    """``call()`` on a daemon thread, abandoned after ``timeout_s``: the repository client
    sets no timeout, and an abandoned download writes nothing (only its caller writes)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", call()))
        except BaseException as error:  # noqa: BLE001 - carried to the caller's thread
            outcome.append(("error", error))

    thread = threading.Thread(target=run, name=f"ddi-download-{key.version or 'p'}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise ServiceError(
            f"downloading the {key.label} from {SOURCE} timed out after {timeout_s:.0f}s",
            hint=_NETWORK_HINT + "; or raise --timeout",
        )
    status, value = outcome[0]
    if status == "ok":
        return dict(value)
    raise _download_error(value, key) from value


_NETWORK_HINT = (
    "this Mac needs HTTPS access to raw.githubusercontent.com once; or copy the ddi folder of "
    "the agent cache from a Mac that has it"
)


def _download_error(error: BaseException, key: ImageKey) -> AnefarmError:
    from developer_disk_image.exceptions import (
        DeveloperDiskImageException,
        GithubRateLimitExceededError,
    )

    detail = first_line(error)
    if isinstance(error, AnefarmError):
        return error
    if isinstance(error, pmd3.DeveloperDiskImageNotFoundError):
        return ConfigError(
            f"{SOURCE} has no {key.label} ({detail})",
            hint="check the iOS version (major.minor, e.g. 16.7); Xcode's DeviceSupport folder may have it",
        )
    if isinstance(error, GithubRateLimitExceededError):
        return ServiceError(f"GitHub refused the download: {detail}", hint="wait and rerun")
    if isinstance(error, DeveloperDiskImageException):
        return ServiceError(f"downloading the {key.label} failed: {detail}", hint=_NETWORK_HINT)
    if isinstance(error, OSError) or is_http(error):
        # requests' ConnectionError is an OSError; its other errors (SSL, proxies) are not.
        return ServiceError(
            f"cannot download the {key.label}: no network ({type(error).__name__})",
            hint=_NETWORK_HINT,
        )
    return AnefarmError(f"downloading the {key.label} failed: {type(error).__name__}: {detail}")


def _write_atomically(target: Path, blobs: dict[str, bytes], key: ImageKey) -> None:
    # Written beside the target and renamed into place: a reader (a worker mounting) sees
    # the whole image or none of it, even if this process is killed half way.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        for name in key.files:
            (staging / name).write_bytes(blobs[name])
        old = staging.with_suffix(".old")
        if target.exists():  # --refresh, or leftovers locate() found unusable: swap, then delete
            os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def is_http(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] in {"requests", "urllib3"}


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
