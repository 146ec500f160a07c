"""``agents.devices.ios.tunnel`` against the installed pymobiledevice3, with only the lowest
pieces faked at the boundary: the lockdown connection, the CoreDeviceProxy service and the
userspace network stack for the 17.4+ tunnel; a real HTTP server playing tunneld (or none)
for 17.0–17.3. What runs in between is pymobiledevice3's own code: its lifecycle lock, its
one-tunnel-per-process guard and its transport watcher."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pymobiledevice3.exceptions import (
    InvalidServiceError,
    NotPairedError,
    PyMobileDevice3Exception,
)
from pymobiledevice3.remote import tunnel_service, userspace_tunnel
from pymobiledevice3.remote.common import TunnelProtocol
from pymobiledevice3.remote.tunnel_service import TunnelResult

from agents.devices.ios import tunnel
from agents.devices.ios.errors import TUNNELD_REASON
from agents.devices.ios.services import Pmd3DeveloperServices
from orchestrator.errors import DeviceNotReady

UDID = "00008110-000A11112222333E"
MUX = "/tmp/anefarm-test/usbmuxd"
RECORDS = Path("/tmp/anefarm-test/pair-records")


class Boundary:
    """What pymobiledevice3 would have talked to, and what it was asked."""

    def __init__(self, *, paired: bool = True, proxy: bool | str = True) -> None:
        self.paired, self.proxy = paired, proxy
        self.usbmux_calls: list[dict[str, Any]] = []
        self.closed: list[str] = []
        self.transport_dead = asyncio.Event()

    async def create_using_usbmux(self, **options: Any) -> Any:
        self.usbmux_calls.append(options)
        return FakeLockdown(self)

    async def create_proxy(self, lockdown: Any) -> Any:
        if self.proxy == "hangs":
            await asyncio.Event().wait()
        if not self.proxy:
            raise InvalidServiceError("InvalidService", UDID, "17.5")
        return FakeProxy(self)


class FakeLockdown:
    def __init__(self, boundary: Boundary) -> None:
        self.boundary, self.paired, self.udid = boundary, boundary.paired, UDID

    async def close(self) -> None:
        self.boundary.closed.append("lockdown")


class FakeTun:
    addr = "fd00::2"

    def set_peer(self, address: str) -> None:
        self.peer = address


class FakeTunnelClient:
    """The RemotePairingTcpTunnel: its wait_closed() returns when the USB transport dies."""

    def __init__(self, boundary: Boundary) -> None:
        self.boundary, self.tun = boundary, FakeTun()

    async def wait_closed(self) -> None:
        await self.boundary.transport_dead.wait()


class FakeProxy:
    def __init__(self, boundary: Boundary) -> None:
        self.boundary = boundary

    @asynccontextmanager
    async def start_tcp_tunnel(self) -> AsyncIterator[TunnelResult]:
        client: Any = FakeTunnelClient(self.boundary)
        try:
            yield TunnelResult("utun-userspace", "fd00::1", 58783, TunnelProtocol.TCP, client)
        finally:
            self.boundary.closed.append("tunnel")

    async def close(self) -> None:
        self.boundary.closed.append("proxy")


class FakeDialPlane:
    def __init__(self, tun: Any, address: str) -> None:
        self.address = address

    async def __aenter__(self) -> FakeDialPlane:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def dial(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing dials in these tests")


class FakeRsdService:
    """RemoteServiceDiscoveryService: connect() is the RSD handshake over the tunnel."""

    boundary: Boundary

    def __init__(self, address: tuple[str, int], **kwargs: Any) -> None:
        self.address, self.udid = address, UDID

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        self.boundary.closed.append("rsd")


@pytest.fixture
def boundary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Boundary]:
    made = Boundary()
    FakeRsdService.boundary = made
    monkeypatch.setattr(tunnel, "create_using_usbmux", made.create_using_usbmux)
    # Also where pymobiledevice3's own UserspaceRsdTunnel looks for it: a driver that went
    # back to that (autopair, default usbmuxd) shows in the recorded arguments.
    monkeypatch.setattr(userspace_tunnel, "create_using_usbmux", made.create_using_usbmux)
    monkeypatch.setattr(tunnel_service.CoreDeviceTunnelProxy, "create", made.create_proxy)
    monkeypatch.setattr(tunnel, "UserspaceDialPlane", FakeDialPlane)
    monkeypatch.setattr(tunnel, "RemoteServiceDiscoveryService", FakeRsdService)
    yield made
    left, flag = userspace_tunnel._active_tunnel, tunnel_service.USE_USERSPACE_TUNNEL
    # A tunnel a test left open must fail that test, not refuse the next ones theirs.
    # (Plain assignments: monkeypatch would put the leaked values back when it undoes.)
    userspace_tunnel._active_tunnel = None
    userspace_tunnel.USERSPACE_ACTIVE = False
    tunnel_service.USE_USERSPACE_TUNNEL = False
    assert left is None, "a test left a tunnel open"
    assert not flag


async def _open(os_version: str = "17.5") -> Any:
    return await Pmd3DeveloperServices().open_rsd(
        UDID, os_version, usbmux_address=MUX, pair_records_dir=RECORDS
    )


def test_pymobiledevice3_still_has_what_the_driver_tunnel_relies_on() -> None:
    # DriverRsdTunnel overrides one private step of UserspaceRsdTunnel and shares its
    # private guard: an upgrade that renames them must fail here, not on a Mac.
    assert hasattr(userspace_tunnel, "_active_tunnel")
    assert hasattr(userspace_tunnel, "USERSPACE_ACTIVE")
    assert hasattr(userspace_tunnel, "_lifecycle_lock")
    assert hasattr(tunnel_service, "USE_USERSPACE_TUNNEL")
    for name in ("_aopen_locked", "_watch_transport_closed", "aopen", "aclose"):
        assert callable(getattr(userspace_tunnel.UserspaceRsdTunnel, name)), name
    handle = userspace_tunnel.UserspaceRsdTunnel()
    assert {"_exit_stack", "_transport_watcher", "rsd", "tun"} <= set(vars(handle))


def test_the_tunnel_never_pairs_and_uses_the_drivers_usbmuxd_records_and_usb(
    boundary: Boundary,
) -> None:
    async def scenario() -> None:
        rsd = await _open()
        assert isinstance(rsd, FakeRsdService) and rsd.address == ("fd00::1", 58783)
        assert isinstance(userspace_tunnel._active_tunnel, tunnel.DriverRsdTunnel)
        assert userspace_tunnel.USERSPACE_ACTIVE
        # The fake stands in for pymobiledevice3's RSD; close_rsd only uses it as a key.
        await Pmd3DeveloperServices().close_rsd(rsd)  # type: ignore[arg-type]

    asyncio.run(scenario())
    assert boundary.usbmux_calls == [
        {
            "serial": UDID,
            "autopair": False,
            "connection_type": "USB",
            "usbmux_address": MUX,
            "pairing_records_cache_folder": RECORDS,
        }
    ]
    assert boundary.closed == ["rsd", "tunnel", "proxy", "lockdown"]  # all of it, in reverse


def test_one_tunnel_per_process_holds_both_ways(boundary: Boundary) -> None:
    async def scenario() -> None:
        rsd = await _open()
        with pytest.raises(PyMobileDevice3Exception, match="already active in this process"):
            await _open()
        # pymobiledevice3's own tunnel sees ours through its guard, too.
        with pytest.raises(PyMobileDevice3Exception, match="already active in this process"):
            await userspace_tunnel.UserspaceRsdTunnel(serial=UDID, autopair=False).aopen()
        await tunnel.close_rsd(rsd)
        again = await _open()  # closing released it
        await tunnel.close_rsd(again)

    asyncio.run(scenario())
    assert len(boundary.usbmux_calls) == 2  # the refused opens never reached the device


def test_a_forked_child_inherits_the_open_tunnel_and_is_refused(boundary: Boundary) -> None:
    loop = asyncio.new_event_loop()
    rsd = loop.run_until_complete(_open())
    pid = os.fork()
    if pid == 0:  # the child: only os._exit, whatever happens
        code = 1
        signal.alarm(30)
        try:
            try:
                asyncio.new_event_loop().run_until_complete(_open())
                code = 2
            except PyMobileDevice3Exception as error:
                code = 0 if "already active" in str(error) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    loop.run_until_complete(tunnel.close_rsd(rsd))
    loop.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_death_of_the_usb_transport_tears_the_tunnel_down(boundary: Boundary) -> None:
    async def scenario() -> None:
        rsd = await _open()
        boundary.transport_dead.set()  # the cable is pulled
        for _ in range(100):
            if userspace_tunnel._active_tunnel is None:
                break
            await asyncio.sleep(0.01)
        assert userspace_tunnel._active_tunnel is None
        assert boundary.closed == ["rsd", "tunnel", "proxy", "lockdown"]
        await tunnel.close_rsd(rsd)  # the driver's drop() afterwards is harmless
        assert boundary.closed == ["rsd", "tunnel", "proxy", "lockdown"]
        await tunnel.close_rsd(await _open())  # and a replugged device gets a new tunnel

    asyncio.run(scenario())


def test_an_unpaired_device_is_not_paired_and_nothing_stays_open(boundary: Boundary) -> None:
    boundary.paired = False
    with pytest.raises(NotPairedError):
        asyncio.run(_open())
    assert boundary.closed == ["lockdown"]
    assert [call["autopair"] for call in boundary.usbmux_calls] == [False]


def test_a_device_without_core_device_proxy_says_so_and_closes_everything(
    boundary: Boundary,
) -> None:
    boundary.proxy = False
    with pytest.raises(DeviceNotReady) as caught:
        asyncio.run(_open())
    assert caught.value.reasons == [tunnel.NO_PROXY_REASON]
    assert boundary.closed == ["lockdown"]


def test_an_open_given_up_half_way_leaves_nothing_open(boundary: Boundary) -> None:
    boundary.proxy = "hangs"  # the device never answers the CoreDeviceProxy request

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_open(), timeout=0.2)
        assert boundary.closed == ["lockdown"]
        boundary.proxy = True
        await tunnel.close_rsd(await _open())  # the process's tunnel slot is free again

    asyncio.run(scenario())


def test_below_17_there_is_no_tunnel(boundary: Boundary) -> None:
    assert asyncio.run(_open("16.7.8")) is None
    assert boundary.usbmux_calls == []


# -- tunneld (17.0–17.3) ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tunneld() -> Iterator[tuple[dict[str, Any], tuple[str, int]]]:
    """A tunneld HTTP endpoint answering ``GET /`` with the tunnels it lists."""
    listed: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(listed.pop("_delay_s", 0))
            body = json.dumps(listed).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield listed, ("127.0.0.1", int(server.server_address[1]))
    server.shutdown()
    server.server_close()
    thread.join()


def _open_through(address: tuple[str, int]) -> Any:
    services = Pmd3DeveloperServices(tunneld_address=address)
    return asyncio.run(services.open_rsd(UDID, "17.2", usbmux_address=MUX))


def test_tunneld_not_running_says_run_tunneld() -> None:
    with pytest.raises(DeviceNotReady) as caught:
        _open_through(("127.0.0.1", _free_port()))
    assert caught.value.reasons == [TUNNELD_REASON]
    assert "tunneld does not answer at 127.0.0.1:" in caught.value.message


def test_a_stale_tunneld_entry_says_restart_tunneld(
    tunneld: tuple[dict[str, Any], tuple[str, int]],
) -> None:
    listed, address = tunneld
    # A tunnel left over from an unplug: listed, but nothing answers at its address.
    listed[UDID] = [{"tunnel-address": "127.0.0.1", "tunnel-port": _free_port(),
                     "interface": "utun7"}]  # fmt: skip
    with pytest.raises(DeviceNotReady) as caught:
        _open_through(address)
    assert caught.value.reasons == [tunnel.STALE_TUNNELD_REASON]
    assert "restart tunneld" in caught.value.reasons[0]
    assert isinstance(caught.value.__cause__, IndexError)  # what pymobiledevice3 raised


def test_a_device_tunneld_does_not_list_says_so(
    tunneld: tuple[dict[str, Any], tuple[str, int]],
) -> None:
    listed, address = tunneld
    listed["another-device"] = []
    with pytest.raises(DeviceNotReady) as caught:
        _open_through(address)
    assert caught.value.reasons == [tunnel.NO_TUNNEL_REASON]


def test_asking_tunneld_does_not_stall_the_event_loop(
    tunneld: tuple[dict[str, Any], tuple[str, int]],
) -> None:
    listed, address = tunneld
    listed["_delay_s"] = 0.5  # a slow (or hung, up to pymobiledevice3's 5 s) tunneld
    ticks = 0

    async def scenario() -> None:
        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.get_running_loop().create_task(tick())
        services = Pmd3DeveloperServices(tunneld_address=address)
        try:
            with pytest.raises(DeviceNotReady):
                await services.open_rsd(UDID, "17.2")
        finally:
            ticker.cancel()

    asyncio.run(scenario())
    assert ticks >= 10  # the loop kept running while tunneld took its time
