"""The agent supervisor: one worker process per device, restarted when it dies.

It discovers the devices of its host (a simulated farm today; USB devices through the
iOS driver), starts ``python -m agents.worker`` for each (credentials in its environment,
never on its command line, where ``ps`` shows them), keeps the agent heartbeat in
Redis, restarts a worker that dies (with backoff, never a quarantined device's), and
on SIGTERM/SIGINT stops gracefully: each worker gets a warm shutdown, so a run in
progress finishes (or, if it is killed, Celery hands the unacknowledged batch back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

import redis

from orchestrator.protocol import livestate
from orchestrator.protocol.privileges import warn_if_root
from orchestrator.settings import Settings

log = logging.getLogger("anefarm.agent")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
USB = "usb"  # slot kind of a real device (its ProductType is read by its worker)
STOP_GRACE_S = 30.0


@dataclass
class WorkerSlot:
    udid: str
    product_type: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    history: list[int] = field(default_factory=list)


@dataclass
class FarmPlan:
    """What the supervisor runs: the simulated farm spec and/or real devices."""

    farm: str | None = None
    ios: bool = False  # follow USB devices through usbmuxd
    seed: int = 0
    time_mode: str = "instant"
    speed: float = 1.0


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        broker_url: str,
        name: str | None = None,
        plan: FarmPlan,
        loglevel: str = "WARNING",
    ) -> None:
        self.settings = settings
        self.broker_url = broker_url
        self.name = name or socket.gethostname()
        self.plan = plan
        self.loglevel = loglevel
        self.redis = livestate.connect(broker_url)
        self.slots: dict[str, WorkerSlot] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # slots change from the usbmux watcher thread too
        self._broker_down = False

    def discover(self) -> list[WorkerSlot]:
        slots = []
        if self.plan.farm:
            from agents.devices.simulated import build_farm

            for device in build_farm(
                self.plan.farm,
                seed=self.plan.seed,
                time_mode=self.plan.time_mode,
                speed=self.plan.speed,
                agent=self.name,  # UDIDs of this agent's own (farm.agent_udid)
            ):
                ident = device.identity
                slots.append(WorkerSlot(udid=ident.udid, product_type=ident.product_type))
                device.close()
        return slots

    def _command(self, slot: WorkerSlot) -> list[str]:
        # No credential here: a command line is readable by every user of the host (ps).
        cmd = [sys.executable, "-m", "agents.worker", "--udid", slot.udid, "--agent", self.name]
        cmd += ["--loglevel", self.loglevel]
        if slot.product_type == USB:
            return cmd
        if self.plan.farm:
            cmd += ["--farm", self.plan.farm, "--seed", str(self.plan.seed)]
            cmd += ["--time-mode", self.plan.time_mode, "--speed", str(self.plan.speed)]
        return cmd

    def _start(self, slot: WorkerSlot) -> None:
        # The broker URL (it may carry a password) goes by the environment, which only
        # the worker's own user can read; the artifact token is inherited the same way.
        env = {**os.environ, "ANEFARM_BROKER_URL": self.broker_url}
        slot.process = subprocess.Popen(self._command(slot), env=env)
        log.info("worker for %s started (pid %s)", slot.udid, slot.process.pid)

    def start(self) -> None:
        warn_if_root()  # here, once: the device workers started below inherit the mark
        for slot in self.discover():
            self.slots[slot.udid] = slot
            self._start(slot)
        if self.plan.ios:
            watcher = threading.Thread(target=self._watch_usb, name="usbmux-watch", daemon=True)
            watcher.start()
        elif not self.slots:
            log.warning("agent %s has no devices", self.name)

    def _watch_usb(self) -> None:
        from agents.devices.ios import watch_devices

        watch_devices(self._attached, self._detached, self._stopping)

    def _attached(self, udid: str) -> None:
        with self._lock:
            if udid not in self.slots:
                log.warning("USB device %s attached: starting its worker", udid)
                self.slots[udid] = WorkerSlot(udid=udid, product_type=USB)

    def _detached(self, udid: str) -> None:
        with self._lock:
            slot = self.slots.pop(udid, None)
        if slot is not None and slot.process is not None and slot.process.poll() is None:
            log.warning("USB device %s detached: stopping its worker", udid)
            # A batch in flight fails as DeviceGone and is retried on another device.
            slot.process.send_signal(signal.SIGTERM)

    def tick(self) -> None:
        """One supervision step: heartbeat, restart dead workers. A broker that is down
        (a Redis restart) is waited out: workers go on being supervised meanwhile."""
        try:
            livestate.beat_agent(
                self.redis,
                self.name,
                host=socket.gethostname(),
                simulated=bool(self.plan.farm),
                ttl_s=self.settings.heartbeat_ttl_s,
            )
            if self._broker_down:
                log.warning("broker reachable again")
            self._broker_down = False
        except redis.RedisError as error:
            if not self._broker_down:
                log.warning("broker unreachable (%s); waiting for it", error)
            self._broker_down = True
        now = time.monotonic()
        with self._lock:
            slots = list(self.slots.values())
        for slot in slots:
            proc = slot.process
            if proc is None:
                if now >= slot.next_start and not self._stopping.is_set():
                    if self._quarantined(slot.udid):
                        continue
                    self._start(slot)
                continue
            code = proc.poll()
            if code is None:
                continue
            slot.history.append(code)
            slot.process = None
            if self._quarantined(slot.udid):
                log.warning("%s is quarantined: its worker stays stopped", slot.udid)
                continue
            delay = RESTART_BACKOFF_S[min(slot.restarts, len(RESTART_BACKOFF_S) - 1)]
            slot.restarts += 1
            slot.next_start = now + delay
            log.warning("worker for %s exited (%s); restarting in %.1fs", slot.udid, code, delay)

    def _quarantined(self, udid: str) -> bool:
        # Without the broker nobody can tell: start the worker, which asks again itself.
        try:
            return livestate.is_quarantined(self.redis, udid)
        except redis.RedisError:
            return False

    def run_forever(self, poll_s: float = 0.5) -> None:
        self.start()
        while not self._stopping.wait(poll_s):
            self.tick()
        self.shutdown()

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stopping.set()

    def shutdown(self, grace_s: float = STOP_GRACE_S) -> None:
        procs = [s.process for s in self.slots.values() if s.process is not None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # Celery: warm shutdown, current run finishes
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()  # unacked batch goes back to the queue (acks_late)
                proc.wait()
        with contextlib.suppress(redis.RedisError):
            self.redis.delete(livestate.AGENT_KEY.format(name=self.name))


def run_agent(
    settings: Settings, *, broker_url: str, name: str | None, plan: FarmPlan, loglevel: str
) -> None:
    supervisor = Supervisor(
        settings, broker_url=broker_url, name=name, plan=plan, loglevel=loglevel
    )
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.run_forever()
