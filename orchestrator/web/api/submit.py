"""``POST /api/v1/jobs``: submit models as ``anefarm submit`` does, over HTTP.

The upload streams to a temporary directory (``upload``), then the CLI's own path runs:
``dispatch.prepare`` (inspect, lint, resolve the selector against the farm: the same
validation and limits) and ``dispatch.submit`` (store by sha256, write the job, publish).
A ``sha256`` form field per model (in the order of the files) is checked against the
bytes received. An ``.mlpackage`` (a directory) is sent as an uncompressed tar named
``<name>.mlpackage.tar``, holding the package or its contents; it is unpacked with
tarfile's "data" filter (no links, no absolute paths, no ``..``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from python_multipart.exceptions import MultipartParseError

from orchestrator.errors import ArtifactError, UsageError
from orchestrator.modelkit.materialize import unpack_package
from orchestrator.protocol import ComputeUnits
from orchestrator.web import deps
from orchestrator.web.api.upload import Upload, UploadedFile, bad_upload, receive

router = APIRouter(tags=["jobs"])
PACKAGE_TAR = ".mlpackage.tar"
FIELDS = {
    "devices": ("live", "device classes: all, A12, iPhone11,8, chip>=A14 (default: live)"),
    "compute_units": (",".join(u.value for u in ComputeUnits), "comma-separated settings"),
    "iterations": ("50", "timed predictions per setting"),
    "warmup": ("5", "untimed warm-up predictions per setting"),
    "timeout": ("600", "seconds a batch may take on a device"),
    "bisect": ("auto", "auto, always or never"),
    "cold_load": ("process", "process or fresh_compile"),
}
MULTIPART_SCHEMA: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["models"],
                "properties": {
                    "models": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": ".mlmodel files, or .mlpackage directories as"
                        " uncompressed <name>.mlpackage.tar",
                    },
                    "sha256": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "optional: the sha256 of each file as sent, in order",
                    },
                    **{
                        name: {"type": "string", "default": default, "description": text}
                        for name, (default, text) in FIELDS.items()
                    },
                },
            }
        }
    },
}


@router.post(
    "/jobs",
    status_code=201,
    summary="Submit models (multipart upload)",
    openapi_extra={"requestBody": MULTIPART_SCHEMA},
    responses={201: {"description": "The job: its id, runs, waiting runs and warnings"}},
)
async def submit_models(
    request: Request, web: deps.ContextDep, _caller: deps.Submitter
) -> JSONResponse:
    settings = web.settings
    web.broker_url()  # no broker: say so before reading a byte of the upload
    work = Path(tempfile.mkdtemp(prefix="anefarm-upload-"))
    try:
        try:
            upload = await receive(request, work, max_file_bytes=settings.max_model_bytes)
        except MultipartParseError as error:
            raise bad_upload(f"malformed multipart body: {error}") from None
        models = await run_in_threadpool(_model_paths, upload)
        body = await run_in_threadpool(_submit, web, upload, models)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return JSONResponse(body, status_code=201, headers={"Location": f"/api/v1/jobs/{body['job']}"})


def _model_paths(upload: Upload) -> list[Path]:
    files = [f for f in upload.files if f.field == "models"]
    if not files:
        raise UsageError("no model uploaded", hint="send files in the form field `models`")
    expected = upload.fields.get("sha256", [])
    if expected and len(expected) != len(files):
        raise UsageError(f"{len(expected)} sha256 field(s) for {len(files)} model(s)")
    for sent, given in zip(files, expected, strict=False):
        if sent.sha256 != given.strip().lower():
            raise ArtifactError(
                f"{sent.filename} arrived with sha256 {sent.sha256[:12]}…, not {given[:12]}…",
                hint="the upload was corrupted or the wrong file was sent: send it again",
            )
    return [_model_path(f) for f in files]


def _model_path(sent: UploadedFile) -> Path:
    if sent.filename.endswith(PACKAGE_TAR):
        return _unpack(sent)
    if sent.filename.endswith(".mlmodel"):
        return sent.path
    raise UsageError(
        f"{sent.filename}: not a model",
        hint=f"send .mlmodel files, or an .mlpackage as an uncompressed <name>{PACKAGE_TAR}",
    )


def _unpack(sent: UploadedFile) -> Path:
    package = sent.path.with_name(sent.filename.removesuffix(".tar"))
    # Plain tar only: what unpacks is no larger than what was received (under the limit).
    unpack_package(sent.path, package, what=sent.filename, compressed=False)
    sent.path.unlink()
    return package


def _int(upload: Upload, name: str) -> int:
    text = upload.one(name, FIELDS[name][0])
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {text!r}") from None


def _submit(web: deps.WebContext, upload: Upload, models: list[Path]) -> dict[str, Any]:
    from orchestrator.dispatch import SubmitOptions, parse_compute_units, prepare, submit
    from orchestrator.selection import farm_view

    try:
        timeout = float(upload.one("timeout", FIELDS["timeout"][0]))
    except ValueError:
        raise UsageError("timeout must be a number of seconds") from None
    options = SubmitOptions(
        selector=upload.one("devices", FIELDS["devices"][0]),
        compute_units=parse_compute_units(upload.one("compute_units", FIELDS["compute_units"][0])),
        iterations=_int(upload, "iterations"),
        warmup=_int(upload, "warmup"),
        timeout_s=timeout,
        bisect=upload.one("bisect", FIELDS["bisect"][0]),
        cold_load=upload.one("cold_load", FIELDS["cold_load"][0]),
    )
    farm = farm_view(web.redis(), web.sessions)
    prepared = prepare(models, options, farm, device_wait_s=web.settings.device_wait_s)
    outcome = submit(prepared, settings=web.settings, sessions=web.sessions, app=web.celery())
    # The body `anefarm submit --json` prints.
    return {
        "job": str(outcome.job_id),
        "runs": len(outcome.runs),
        "waiting": sum(1 for r in outcome.runs if r.waiting),
        "warnings": outcome.warnings,
    }
