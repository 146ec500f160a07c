"""Fake devices whose developer side is played inside another process: the agent's worker.

`anefarm agent --ios` starts one worker process per USB device, and that process builds its
``IOSDevice`` through ``IOSDevice.from_settings``. With the test/bring-up hook

    ANEFARM_IOS_DEVELOPER_SERVICES=tests.ios.fake_shared:developer_services
    ANEFARM_FAKE_IOS_DIR=<dir>

the worker gets the developer-service fakes of ``fake_developer.py`` (the same classes, the
same runner), over state that the test process sees as well::

    <dir>/<udid>/state.json      the SharedFakeIPhone's fields the developer side reads
    <dir>/<udid>/container/...   the runner's app container (manifest, model, result, done)
    <dir>/<udid>/crash/...       crash reports
    <dir>/<udid>/launched        one JSON line per runner launch (bundle, arguments, batch)

Whether the device is still attached is read the way a driver finds out: through the usbmux
protocol, from the fake usbmuxd's device list (``USBMUXD_SOCKET_ADDRESS``); once it is gone
every service call raises pymobiledevice3's ``ConnectionTerminatedError``, as in-process.
Lockdown, pairing, battery and apps go through the fake usbmuxd itself, as always.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pymobiledevice3.exceptions import PyMobileDevice3Exception
from pymobiledevice3.usbmux import select_device

from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone

DIR_ENV = "ANEFARM_FAKE_IOS_DIR"
HOOK = "tests.ios.fake_shared:developer_services"
# What the developer side reads of the device; assigning one of these republishes it.
SHARED_FIELDS = ("udid", "product_type", "os_version", "build", "apps", "behaviour",
                 "ddi_available", "crash_models")  # fmt: skip


class DirectoryFiles(MutableMapping[str, bytes]):
    """Files under a directory as a mapping of relative POSIX paths to bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or ".." in parts:
            raise KeyError(key)
        return self.root.joinpath(*parts)

    def __getitem__(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)

    def __delitem__(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None
        parent = path.parent
        while parent != self.root and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def __iter__(self) -> Iterator[str]:
        paths = (p for p in self.root.rglob("*") if p.is_file())
        return iter(sorted(p.relative_to(self.root).as_posix() for p in paths))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TextFiles(MutableMapping[str, str]):
    """The same, holding text (crash reports)."""

    def __init__(self, files: DirectoryFiles) -> None:
        self.files = files

    def __getitem__(self, key: str) -> str:
        return self.files[key].decode()

    def __setitem__(self, key: str, value: str) -> None:
        self.files[key] = value.encode()

    def __delitem__(self, key: str) -> None:
        del self.files[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


def _device_dir(root: Path, udid: str) -> Path:
    return root / udid


@dataclass
class SharedFakeIPhone(FakeIPhone):
    """A FakeIPhone (test process side) whose developer-side state lives under ``root``.

    Assigning a shared field (``device.behaviour = "ok"``) republishes it; after changing
    ``apps`` in place call :meth:`publish`."""

    root: Path | None = None

    def __post_init__(self) -> None:
        assert self.root is not None, "SharedFakeIPhone needs root"
        base = _device_dir(self.root, self.udid)
        self.container = DirectoryFiles(base / "container")
        self.crash_reports = TextFiles(DirectoryFiles(base / "crash"))
        self.publish()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in SHARED_FIELDS and getattr(self, "root", None) is not None:
            self.publish()

    def launches(self) -> list[list[Any]]:
        """The runner launches the worker process made on this device, oldest first."""
        assert self.root is not None
        log = _device_dir(self.root, self.udid) / "launched"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def publish(self) -> None:
        assert self.root is not None
        state = _device_dir(self.root, self.udid) / "state.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        partial = state.with_suffix(".part")
        partial.write_text(json.dumps({name: getattr(self, name) for name in SHARED_FIELDS}))
        partial.replace(state)  # a reader never sees half a file


class _LaunchLog(list[Any]):
    """FakeDeveloperServices.launched, also written where the test process reads it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def append(self, launch: Any) -> None:
        super().append(launch)
        with self.path.open("a") as log:
            log.write(json.dumps(launch) + "\n")


class DeviceView:
    """The fake device as a worker process sees it: fields from state.json (read at every
    use, so the test can change behaviour mid-test), files from the shared directories."""

    def __init__(self, root: Path, udid: str) -> None:
        base = _device_dir(root, udid)
        self._state = base / "state.json"
        if not self._state.exists():
            raise FileNotFoundError(f"no shared fake device {udid} under {root}")
        self.container = DirectoryFiles(base / "container")
        self.crash_reports = TextFiles(DirectoryFiles(base / "crash"))
        self.launch_log = base / "launched"

    def __getattr__(self, name: str) -> Any:
        if name in SHARED_FIELDS:
            return json.loads(self._state.read_text())[name]
        raise AttributeError(name)


class UsbmuxFakeDeveloperServices(FakeDeveloperServices):
    """The developer-service fakes for a device played by the test process, asking usbmuxd
    whether it is still attached. (Behaviour "detach" is the test's to play, through its
    fake usbmuxd; there is none in this process.)"""

    def __init__(self, device: DeviceView, *, usbmux_address: str | None = None) -> None:
        super().__init__(None, device)  # type: ignore[arg-type]
        self.usbmux_address = usbmux_address
        self.launched = _LaunchLog(device.launch_log)

    async def reachable(self) -> bool:
        try:
            found = await select_device(self.device.udid, usbmux_address=self.usbmux_address)
        except (PyMobileDevice3Exception, OSError):
            return False  # usbmuxd itself is gone: so is every device behind it
        return found is not None


def developer_services(udid: str) -> UsbmuxFakeDeveloperServices:
    """The ANEFARM_IOS_DEVELOPER_SERVICES factory (``HOOK``)."""
    root = os.environ.get(DIR_ENV)
    if not root:
        raise RuntimeError(f"{HOOK} needs {DIR_ENV}: the directory of the shared fake devices")
    return UsbmuxFakeDeveloperServices(DeviceView(Path(root), udid))
