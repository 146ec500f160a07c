"""The runner's app container over house_arrest (an ``AfcService`` rooted at the container),
faked at the Python boundary but as strict as pymobiledevice3 11.45's AFC client over a
real device (its ``services/afc.py``), for every call the driver makes:

* ``makedirs`` is AFC ``MAKE_DIR``: it creates the missing parents too, and fails on a
  path that is a file;
* ``push(local, remote)`` copies a local *folder* to ``<remote>/<its basename>`` (an
  ``.mlpackage`` pushed to ``inbox/x.mlpackage`` lands at ``inbox/x.mlpackage/x.mlpackage``);
  a local *file* goes into ``remote`` under its own name when ``remote`` is a folder, else to
  ``remote`` itself, whose parent must exist (``AfcFileNotFoundError`` otherwise); symlinks
  on the local side are followed (``os.path.isdir``, ``os.listdir``, ``open``);
* ``set_file_contents`` is ``fopen(…, "w")``: a missing parent folder is
  ``AfcFileNotFoundError`` (AFC ``OBJECT_NOT_FOUND``), a folder is refused;
* ``get_file_contents`` stats first: missing → ``AfcFileNotFoundError``, a folder →
  ``AfcException`` ("Not a regular file");
* ``exists`` is a stat: files and folders; ``rm`` removes a tree depth-first and, for a
  path that is not there, raises (or with ``force`` returns it as not deleted).

Files live in the fake device's ``container`` mapping (path → bytes; a directory tree when
shared across processes: fake_shared.py); folders made by ``makedirs`` live on the
developer-services fake, since the mapping holds files only.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, Any

from pymobiledevice3.exceptions import (
    AfcException,
    AfcFileNotFoundError,
    ConnectionTerminatedError,
)
from pymobiledevice3.services.afc import AfcError

if TYPE_CHECKING:
    from tests.ios.fake_developer import FakeDeveloperServices


async def require_reachable(services: FakeDeveloperServices) -> None:
    """A device that is gone fails every service call, as pymobiledevice3 does over USB."""
    if not await services.reachable():
        raise ConnectionTerminatedError()


def _norm(path: str) -> str:
    return posixpath.normpath(path).strip("/") if path not in ("", "/") else ""


class FakeContainer:
    """AfcService (house_arrest) over the fake device's container (module docstring)."""

    def __init__(self, services: FakeDeveloperServices) -> None:
        self.services = services
        self.device = services.device

    async def _check(self) -> None:
        await require_reachable(self.services)

    # -- the container's tree --------------------------------------------------------
    def _is_file(self, path: str) -> bool:
        return path in self.device.container

    def _is_dir(self, path: str) -> bool:
        if path == "" or path in self.services.dirs:
            return True
        return any(key.startswith(path + "/") for key in self.device.container)

    def _exists(self, path: str) -> bool:
        return self._is_file(path) or self._is_dir(path)

    def _mkdir(self, path: str) -> None:
        parts = path.split("/") if path else []
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if self._is_file(prefix):
                raise AfcException(f"Opcode: MAKE_DIR failed with status: {AfcError.OBJECT_EXISTS} "
                                   f"for file: {path}", AfcError.OBJECT_EXISTS, path)  # fmt: skip
            self.services.dirs.add(prefix)

    def _write(self, path: str, data: bytes) -> None:
        if self._is_dir(path):
            raise AfcException("Opcode: FILE_OPEN failed with status: OBJECT_IS_DIR",
                               AfcError.OBJECT_IS_DIR, None)  # fmt: skip
        if not self._is_dir(posixpath.dirname(path)):
            # fopen of a path whose folder does not exist: AFC answers OBJECT_NOT_FOUND.
            raise AfcFileNotFoundError(
                "Opcode: FILE_OPEN failed with status: OBJECT_NOT_FOUND",
                AfcError.OBJECT_NOT_FOUND, None,
            )  # fmt: skip
        self.device.container[path] = data

    def _push(self, local: str, remote: str) -> None:
        if not os.path.isdir(local):
            if self._is_dir(remote):
                remote = posixpath.join(remote, os.path.basename(local))
            elif not self._exists(remote):
                parent = posixpath.dirname(remote)
                if not self._exists(parent):
                    raise AfcFileNotFoundError(
                        f"Opcode: GET_FILE_INFO failed with status: OBJECT_NOT_FOUND for file: {remote}",
                        AfcError.OBJECT_NOT_FOUND, remote,
                    )  # fmt: skip
            with open(local, "rb") as source:
                self._write(_norm(remote), source.read())
            return
        if not self._exists(remote):
            self._mkdir(remote)
        for name in os.listdir(local):
            self._push(os.path.join(local, name), _norm(posixpath.join(remote, name)))

    # -- what the driver calls ---------------------------------------------------------
    async def makedirs(self, filename: str) -> Any:
        await self._check()
        self._mkdir(_norm(filename))
        return b""

    async def push(
        self,
        local_path: str,
        remote_path: str,
        callback: Any = None,
        progress_bar: bool = True,
    ) -> Any:
        await self._check()
        remote = _norm(remote_path)
        if os.path.isdir(local_path):
            remote = _norm(posixpath.join(remote, os.path.basename(local_path)))
        self._push(local_path, remote)

    async def set_file_contents(self, filename: str, data: bytes, progress: Any = None) -> None:
        await self._check()
        self._write(_norm(filename), data)

    async def get_file_contents(self, filename: str) -> bytes:
        await self._check()
        path = _norm(filename)
        if self._is_dir(path):
            raise AfcException(f"Not a regular file: {filename}", AfcError.INVALID_ARG, filename)
        if not self._is_file(path):
            raise AfcFileNotFoundError(f"No such file on the device: {filename}", 8, filename)
        return self.device.container[path]

    async def exists(self, filename: str) -> Any:
        await self._check()
        return self._exists(_norm(filename))

    async def rm(self, filename: str, match: Any = None, force: bool = False) -> list[str]:
        await self._check()
        path = _norm(filename)
        if not self._exists(path):
            if force:
                return [filename]
            raise AfcFileNotFoundError(
                f"Opcode: REMOVE_PATH failed with status: OBJECT_NOT_FOUND for file: {filename}",
                AfcError.OBJECT_NOT_FOUND, filename,
            )  # fmt: skip
        for key in [k for k in self.device.container if k == path or k.startswith(path + "/")]:
            del self.device.container[key]
        self.services.dirs -= {
            d for d in self.services.dirs if d == path or d.startswith(path + "/")
        }
        return []

    async def close(self) -> None:
        return None
