"""A protocol-level fake of AFC (``com.apple.afc``), enough for what installing an app
needs: the unmodified pymobiledevice3 ``AfcService`` makes the staging directory, writes
the .ipa there (open, write, close) and removes it afterwards.

AFC packets: a 40-byte little-endian header — magic ``CFA6LPAA``, entire length, this
length, packet number, operation — then the payload. Answers carry the request's packet
number: a STATUS with a u64 error code, or FILE_OPEN_RES with a u64 handle. Files land in
the fake device's ``staging`` dict, which its installation_proxy reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

HEADER = struct.Struct("<8sQQQQ")
MAGIC = b"CFA6LPAA"
U64 = struct.Struct("<Q")
# Opcodes and error codes of the AFC protocol (pymobiledevice3.services.afc names them).
STATUS, REMOVE_PATH, MAKE_DIR, FILE_OPEN, FILE_OPEN_RES, WRITE, FILE_CLOSE = (
    0x01, 0x08, 0x09, 0x0D, 0x0E, 0x10, 0x14,
)  # fmt: skip
SUCCESS, OBJECT_NOT_FOUND, OP_NOT_SUPPORTED = 0, 8, 15


def _packet(number: int, operation: int, payload: bytes) -> bytes:
    size = HEADER.size + len(payload)
    return HEADER.pack(MAGIC, size, size, number, operation) + payload


def _path(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode()


async def serve_afc(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, device: Any
) -> None:
    """Answer AFC requests on one service connection until the client closes it."""
    handles: dict[int, str] = {}
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while device.attached:
            magic, entire, _this, number, operation = HEADER.unpack(
                await reader.readexactly(HEADER.size)
            )
            assert magic == MAGIC, magic
            payload = await reader.readexactly(entire - HEADER.size)
            status, answer = SUCCESS, None
            if operation == MAKE_DIR:
                pass  # directories are implied by the paths of staged files
            elif operation == FILE_OPEN:
                handle = len(handles) + 1
                handles[handle] = _path(payload[U64.size :])
                device.staging[handles[handle]] = b""  # the installer opens with "w"
                answer = _packet(number, FILE_OPEN_RES, U64.pack(handle))
            elif operation == WRITE:
                (handle,) = U64.unpack_from(payload)
                name = handles[handle]
                device.staging[name] = device.staging[name] + payload[U64.size :]
            elif operation == FILE_CLOSE:
                handles.pop(U64.unpack_from(payload)[0], None)
            elif operation == REMOVE_PATH:
                status = (
                    SUCCESS
                    if device.staging.pop(_path(payload), None) is not None
                    else OBJECT_NOT_FOUND
                )
            else:
                status = OP_NOT_SUPPORTED
            writer.write(answer or _packet(number, STATUS, U64.pack(status)))
            await writer.drain()
