"""The batch task and the pool child that runs it, importable on its own.

Celery's prefork pool runs each batch in a child process. Linux forks it, so it inherits
whatever the worker built; macOS *spawns* it (billiard's default there): a new interpreter
that unpickles the app, imports the modules the app names, and runs nothing of
``agents/worker.py``'s ``main()``. So the task is declared here at module level, and the
child builds its own settings, device and :class:`DeviceWorker` from the environment when
Celery announces it (``worker_process_init``), the same way under fork and spawn — which
also means the child never uses a connection (or a tunnel) the parent opened.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from agents.device_worker import DeviceWorker, WorkerSpec, open_device
from orchestrator.errors import AnefarmError, ConfigError
from orchestrator.protocol import RunBatch
from orchestrator.protocol.transport import RUN_BATCH_TASK, publish_batch
from orchestrator.settings import load_settings

log = logging.getLogger("anefarm.worker")
# This process's DeviceWorker (one per pool child; the parent never builds one here).
_built: dict[str, DeviceWorker] = {}


def child_worker() -> DeviceWorker:
    """This process's DeviceWorker, built on first use if the pool signal never came."""
    if "worker" not in _built:
        spec = WorkerSpec.from_env()
        if spec is None:
            raise ConfigError(
                "this process is not a device worker's pool child",
                hint="start device workers with `python -m agents.worker` (the agent does)",
            )
        settings = load_settings()
        if not settings.broker_url:
            raise ConfigError("the device worker has no broker URL", hint="set ANEFARM_BROKER_URL")
        device = open_device(spec, settings)
        _built["worker"] = DeviceWorker(
            settings, device, agent=spec.agent, broker_url=settings.broker_url
        )
    return _built["worker"]


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _build_in_child(**_: Any) -> None:
    if WorkerSpec.from_env() is None:
        return  # another kind of worker (the coordinator) in a process that imported us
    try:
        child_worker()
    except Exception:
        # The task retries the build and reports what fails there, as a failed attempt
        # the coordinator hears of, rather than a pool child that dies at birth.
        log.exception("device worker child: cannot open the device yet")


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_in_child(**_: Any) -> None:
    # Close the child's tunnel and sessions politely: the device then frees them at once
    # instead of waiting to notice a dead connection.
    worker = _built.pop("worker", None)
    if worker is not None:
        try:
            worker.device.close()
        except Exception:
            log.exception("device worker child: closing the device failed")


@shared_task(name=RUN_BATCH_TASK, bind=True)  # type: ignore[untyped-decorator,unused-ignore]
def run_batch(task: Task, payload: dict[str, Any]) -> None:
    try:
        worker = child_worker()
    except Exception as error:  # noqa: BLE001 - whatever it is, the batch must not be lost
        hand_back(task, payload, error)
        return
    worker.handle(task.app, payload)


def hand_back(task: Task, payload: dict[str, Any], error: Exception) -> None:
    """The child cannot open its device: give the batch to another device of the class and
    stop this worker (the agent restarts it, with backoff, once the device answers again)."""
    message = (
        error.one_line() if isinstance(error, AnefarmError) else f"{type(error).__name__}: {error}"
    )
    try:
        batch = RunBatch.model_validate(payload)
    except ValueError:
        log.error("cannot open the device (%s); an invalid batch was dropped", message)
    else:
        log.error("cannot open the device (%s); batch %s goes back to its class", message,
                  batch.batch_id)  # fmt: skip
        publish_batch(task.app, batch, to_class=True)  # its priority, its task id
    os.kill(os.getppid(), signal.SIGTERM)
