"""Receiving a multipart upload of models as it streams: each file goes to disk as it
arrives, hashed and counted on the way, and the request is refused (413) the moment a
file passes the size limit, without reading the rest of the body.

Starlette's own form parsing spools the whole body before the route sees it, so a 5 GB
upload would be read and stored before anyone could say no; here the limit is the
CLI's (``ANEFARM_MAX_MODEL_BYTES`` per model) and a body announced larger than the most
it could be is refused before its first byte is read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

MAX_FILES = 64  # models in one submission
MAX_FIELD_BYTES = 64 * 1024  # a text field (a selector, a number)
MAX_FIELDS = 64
SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass
class UploadedFile:
    field: str
    filename: str  # a plain file name (no directories), as the report will show it
    path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class Upload:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)

    def one(self, name: str, default: str) -> str:
        values = self.fields.get(name)
        return values[-1] if values else default


# Refused mid-body: the connection closes after the answer, or the server would go on
# reading (and discarding) the rest of a body nobody wants, to keep the connection alive.
CLOSE = {"Connection": "close"}


def too_large(message: str) -> HTTPException:
    return HTTPException(413, detail=message, headers=CLOSE)


def bad_upload(message: str) -> HTTPException:
    return HTTPException(400, detail=message, headers=CLOSE)


def plain_filename(raw: str) -> str:
    """The last path component, with anything but letters, digits and ``._+-`` made ``_``:
    a client's file name never names a place on our disk."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = SAFE_NAME.sub("_", name)
    if not name or name.strip(".") == "":
        raise bad_upload(f"not a usable file name: {raw!r}")
    return name[:255]


class _Receiver:
    """python-multipart callbacks: one part at a time, files to disk, fields in memory."""

    def __init__(self, into: Path, max_file_bytes: int) -> None:
        self.into = into
        self.max_file_bytes = max_file_bytes
        self.upload = Upload()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._file: UploadedFile | None = None
        self._out: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._field: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._file, self._field = {}, None, None
        self._value = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.upload.files) >= MAX_FILES:
                raise bad_upload(f"at most {MAX_FILES} models in one submission")
            filename = plain_filename(options[b"filename"].decode("utf-8", "replace"))
            # One directory per file: two uploads of the same name do not collide.
            folder = self.into / str(len(self.upload.files))
            folder.mkdir()
            self._file = UploadedFile(field=name, filename=filename, path=folder / filename)
            self._out = self._file.path.open("wb")
            self._digest = hashlib.sha256()
        else:
            if sum(len(v) for v in self.upload.fields.values()) >= MAX_FIELDS:
                raise bad_upload(f"at most {MAX_FIELDS} form fields")
            self._field = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._out is not None:
            self._file.size += len(chunk)
            if self._file.size > self.max_file_bytes:
                raise too_large(
                    f"{self._file.filename} is larger than the limit of {self.max_file_bytes}"
                    " bytes (ANEFARM_MAX_MODEL_BYTES on the server)"
                )
            self._digest.update(chunk)
            self._out.write(chunk)
        elif self._field is not None:
            self._value += chunk
            if len(self._value) > MAX_FIELD_BYTES:
                raise too_large(f"form field {self._field!r} is over {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._file is not None and self._out is not None:
            self._out.close()
            self._out = None
            self._file.sha256 = self._digest.hexdigest()
            self.upload.files.append(self._file)
        elif self._field is not None:
            value = self._value.decode("utf-8", "replace")
            self.upload.fields.setdefault(self._field, []).append(value)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


async def receive(request: Request, into: Path, *, max_file_bytes: int) -> Upload:
    """Parse ``request``'s multipart body into ``into`` (a fresh directory)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(
            415, detail="send the models as multipart/form-data (curl -F models=@model.mlmodel)"
        )
    announced = request.headers.get("content-length")
    most = MAX_FILES * max_file_bytes + MAX_FIELDS * MAX_FIELD_BYTES
    if announced is not None and announced.isdigit() and int(announced) > most:
        raise too_large(f"the request body of {announced} bytes is over the limit of {most}")
    receiver = _Receiver(into, max_file_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    finally:
        receiver.close()
    return receiver.upload
