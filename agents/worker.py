"""One device worker process: a Celery worker bound to exactly one device.

It consumes ``device.<ProductType>`` and ``device.<udid>`` with concurrency 1 and
prefetch 1, so a free device pulls work and a busy one never hoards it. Started by the
supervisor as ``python -m agents.worker``, with the broker URL (and any other credential)
in its environment, never on its command line.

Two processes share the device: this one (identity, live state, the heartbeat's
lockdown-level readiness) and the pool child that runs batches (``agents/batch_task.py``),
which alone opens developer services and tunnels. The child is forked on Linux and
spawned on macOS; ``ANEFARM_WORKER_START_METHOD`` picks either anywhere.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import threading

from agents import batch_task
from agents.device_worker import SPEC_ENV, DeviceWorker, WorkerSpec, open_device
from orchestrator import catalog
from orchestrator.errors import ConfigError
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import create_app, device_class_queue, device_queue, run_worker
from orchestrator.settings import load_settings

log = logging.getLogger("anefarm.worker")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="anefarm device worker (one per device)")
    parser.add_argument("--udid", required=True)
    parser.add_argument("--agent", default=socket.gethostname())
    parser.add_argument("--farm", help="simulated farm spec the device belongs to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-mode", default="instant", choices=["instant", "realtime"])
    parser.add_argument("--speed", type=float, default=1.0)
    # Kept for old launch scripts only: a URL on the command line shows its password to
    # every user of the host (ps). The supervisor passes ANEFARM_BROKER_URL instead.
    parser.add_argument("--broker-url", help=argparse.SUPPRESS)
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(name)s %(message)s")
    if args.broker_url:
        log.warning("--broker-url is visible to every user of this host: set ANEFARM_BROKER_URL")

    settings = load_settings(broker_url=args.broker_url)
    if not settings.broker_url:
        raise ConfigError(
            "the device worker has no broker URL",
            hint="set ANEFARM_BROKER_URL (the agent supervisor passes it in the environment)",
        )
    spec = WorkerSpec(udid=args.udid, agent=args.agent, farm=args.farm, seed=args.seed,
                      time_mode=args.time_mode, speed=args.speed)  # fmt: skip
    # What the pool child rebuilds itself from (a spawned child inherits only this).
    os.environ[SPEC_ENV] = spec.to_env()
    os.environ["ANEFARM_BROKER_URL"] = settings.broker_url
    device = open_device(spec, settings)
    worker = DeviceWorker(settings, device, agent=args.agent, broker_url=settings.broker_url)
    if livestate.is_quarantined(worker.redis, device.identity.udid):
        worker.state = livestate.DeviceState.QUARANTINED
        worker.publish_state()
        log.warning("%s is quarantined; not consuming", device.identity.udid)
        return
    catalog.device(device.identity.product_type)  # refuse a device the catalog lacks
    worker.check_readiness()  # say the truth from the first heartbeat on
    app = create_app(settings)
    # A spawned child imports the task from here; a forked one has it already.
    app.conf.imports = (batch_task.__name__,)
    worker.publish_state()
    beat = threading.Thread(target=worker.heartbeat_forever, daemon=True)
    beat.start()
    queues = [
        device_class_queue(device.identity.product_type),
        device_queue(device.identity.udid),
    ]
    try:
        run_worker(
            app,
            queues,
            hostname=f"{device.identity.udid}@{args.agent}",
            loglevel=args.loglevel,
            start_method=settings.worker_start_method,
        )
    finally:
        worker.stop()
        device.close()


if __name__ == "__main__":
    try:
        main()
    finally:
        # Skip the full garbage collection of the interpreter's exit (every object of
        # celery, kombu, sqlalchemy …): seconds of an agent's stop on a loaded host.
        gc.freeze()
