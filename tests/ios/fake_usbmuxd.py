"""A protocol-level fake usbmuxd and lockdownd on a unix socket, for the UNMODIFIED
pymobiledevice3 client (and its CLI through ``USBMUXD_SOCKET_ADDRESS``).

usbmuxd packets: little-endian u32 length (including itself), version, message, tag, then
an XML plist (message 8). After a successful ``Connect`` the same socket carries the
device port: lockdownd on 62078 (big-endian u32 length + XML plist), plain plist services
(diagnostics_relay, installation_proxy: lookup and install) and AFC (``fake_afc``, where an
install stages its .ipa) on ports lockdownd hands out. No SSL:
StartSession and StartService answer ``EnableSessionSSL``/``EnableServiceSSL`` false.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import plistlib
import re
import socket
import struct
import threading
import zipfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.ios.fake_afc import serve_afc

LOCKDOWN_PORT = 62078
HOST_ID = "00000000-0000-4000-8000-0000000000AA"
SYSTEM_BUID = "00000000-0000-4000-8000-0000000000BB"

D = TypeVar("D", bound="FakeIPhone")  # attach() hands back the device as given


@dataclass
class FakeIPhone:
    """One fake device's state; the developer-side fakes share it (tests/ios/fake_developer.py)."""

    udid: str
    product_type: str = "iPhone11,8"
    os_version: str = "16.7.2"
    build: str = "20H115"
    name: str = "farm XR"
    paired: bool = True
    locked: bool = False
    developer_mode: bool = True
    ddi_available: bool = True
    battery_percent: int = 80
    charging: bool = True
    temperature_raw: int = 3050  # 1/100 °C, as IOPMPowerSource reports it
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    behaviour: str = "ok"  # ok | hang | crash | oom | detach | malformed
    # The runner crashes on any launch that carries one of these models (sha256s).
    crash_models: list[str] = field(default_factory=list)
    # A SIMULATED device whose behaviour model measures for the fake runner (fake_runner).
    runner_model: Any = None
    profile_trusted: bool = True  # whether the runner's developer profile is trusted
    ddi_mounted: bool = False  # the Developer Disk Image; a restart unmounts it
    devid: int = 0
    attached: bool = True
    restarts: int = 0
    installs: int = 0
    staging: dict[str, bytes] = field(default_factory=dict)  # files written over AFC
    # App container files and crash reports by path (directories when shared: fake_shared.py).
    container: MutableMapping[str, bytes] = field(default_factory=dict)
    crash_reports: MutableMapping[str, str] = field(default_factory=dict)
    # Written by ReportCrash, not yet moved where the crash-report AFC service shows them:
    # CrashReportsManager.flush() (com.apple.crashreportmover) moves them (fake_developer.py).
    pending_crash_reports: MutableMapping[str, str] = field(default_factory=dict)
    trust: str = "accept"  # what the person does with the Trust dialog: accept | pending | deny
    host_id: str = HOST_ID  # the host this device trusts

    def values(self) -> dict[str, Any]:
        return {
            "UniqueDeviceID": self.udid,
            "ProductType": self.product_type,
            "ProductVersion": self.os_version,
            "BuildVersion": self.build,
            "DeviceName": self.name,
            "DeviceClass": "iPhone",
            "UniqueChipID": 1234,
            "WiFiAddress": "02:00:00:00:00:0a",
            "DevicePublicKey": device_public_key(),
            # True while the screen is locked with a passcode, False once unlocked (even
            # with a passcode set): what `ideviceinfo -k PasswordProtected` and
            # `tidevice info -k PasswordProtected` are used for (libimobiledevice#1073,
            # alibaba/tidevice#300). Read it with a fresh GetValue: it changes.
            "PasswordProtected": self.locked,
        }


@functools.cache
def device_public_key() -> bytes:
    """A real RSA public key: the client builds its pairing certificates from it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)


def _frame_mux(tag: int, payload: dict[str, Any]) -> bytes:
    body = plistlib.dumps(payload)
    return struct.pack("<IIII", 16 + len(body), 1, 8, tag) + body


def _frame_service(payload: dict[str, Any]) -> bytes:
    body = plistlib.dumps(payload)
    return struct.pack(">I", len(body)) + body


class FakeUsbmuxd:
    """Serve fake devices on ``path``; ``attach``/``detach`` push Listen events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.devices: dict[str, FakeIPhone] = {}
        self._listeners: list[tuple[asyncio.StreamWriter, int]] = []
        self._device_streams: dict[str, list[asyncio.StreamWriter]] = {}
        self._services: dict[tuple[str, int], str] = {}
        self._next_devid = 1
        self._next_port = 50000
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.requests: list[str] = []  # lockdownd requests seen, for assertions

    @property
    def address(self) -> str:
        return str(self.path)

    def start(self) -> FakeUsbmuxd:
        self._thread.start()
        self._server = self._sync(asyncio.start_unix_server(self._client, path=str(self.path)))
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._server is not None
            self._server.close()
            for writers in self._device_streams.values():
                for writer in writers:
                    writer.close()
            for writer, _ in self._listeners:
                writer.close()

        self._sync(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def _sync(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    # -- devices coming and going -------------------------------------------------------
    def attach(self, device: D) -> D:
        self._sync(self._attach(device))
        return device

    def detach(self, udid: str) -> None:
        self._sync(self._detach(udid))

    async def _attach(self, device: FakeIPhone) -> None:
        device.devid = self._next_devid
        self._next_devid += 1
        device.attached = True
        self.devices[device.udid] = device
        for writer, _ in list(self._listeners):
            with contextlib.suppress(ConnectionError):
                writer.write(_frame_mux(0, self._attached(device)))

    async def _detach(self, udid: str) -> None:
        device = self.devices.pop(udid)
        device.attached = False
        for writer in self._device_streams.pop(udid, []):
            writer.close()  # the cable is out: every open stream to the device dies
        for writer, _ in list(self._listeners):
            with contextlib.suppress(ConnectionError):
                writer.write(_frame_mux(0, {"MessageType": "Detached", "DeviceID": device.devid}))

    def _attached(self, device: FakeIPhone) -> dict[str, Any]:
        props = {"SerialNumber": device.udid, "ConnectionType": "USB", "DeviceID": device.devid}
        return {"MessageType": "Attached", "DeviceID": device.devid, "Properties": props}

    # -- the usbmuxd protocol -----------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(16)
                length, _version, _message, tag = struct.unpack("<IIII", head)
                request = plistlib.loads(await reader.readexactly(length - 16))
                kind = request.get("MessageType")
                if kind == "ReadBUID":
                    writer.write(_frame_mux(tag, {"BUID": SYSTEM_BUID}))
                elif kind == "ListDevices":
                    listed = [self._attached(d) for d in self.devices.values()]
                    writer.write(_frame_mux(tag, {"DeviceList": listed}))
                elif kind == "Listen":
                    writer.write(_frame_mux(tag, {"MessageType": "Result", "Number": 0}))
                    self._listeners.append((writer, tag))
                    for device in self.devices.values():
                        writer.write(_frame_mux(0, self._attached(device)))
                elif kind == "ReadPairRecord":
                    writer.write(_frame_mux(tag, self._pair_record(request["PairRecordID"])))
                elif kind == "SavePairRecord":
                    writer.write(_frame_mux(tag, {"MessageType": "Result", "Number": 0}))
                elif kind == "Connect":
                    await self._connect(request, tag, reader, writer)
                    return
                else:
                    writer.write(_frame_mux(tag, {"MessageType": "Result", "Number": 1}))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._listeners = [(w, t) for w, t in self._listeners if w is not writer]
            writer.close()

    def _pair_record(self, udid: str) -> dict[str, Any]:
        device = self.devices.get(udid)
        if device is None or not device.paired:
            return {"MessageType": "Result", "Number": 2}
        record = {"HostID": device.host_id, "SystemBUID": SYSTEM_BUID, "HostCertificate": b"",
                  "HostPrivateKey": b"", "EscrowBag": b""}  # fmt: skip
        return {"PairRecordData": plistlib.dumps(record)}

    async def _connect(
        self,
        request: dict[str, Any],
        tag: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        port = socket.ntohs(request["PortNumber"])  # the client sends it network-ordered
        device = next((d for d in self.devices.values() if d.devid == request["DeviceID"]), None)
        service = self._services.get((device.udid, port)) if device else None
        if device is None or (port != LOCKDOWN_PORT and service is None):
            writer.write(_frame_mux(tag, {"MessageType": "Result", "Number": 3}))
            await writer.drain()
            return
        writer.write(_frame_mux(tag, {"MessageType": "Result", "Number": 0}))
        await writer.drain()
        self._device_streams.setdefault(device.udid, []).append(writer)
        if service in STREAM_SERVICES:  # binary protocols with a server of their own
            await STREAM_SERVICES[service](reader, writer, device)
            return
        handler = self._lockdownd if port == LOCKDOWN_PORT else SERVICES[service or ""]
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (size,) = struct.unpack(">I", await reader.readexactly(4))
                message = plistlib.loads(await reader.readexactly(size))
                answer = handler(self, device, message)
                # A handler may answer with several messages (installation progress).
                for part in answer if isinstance(answer, list) else [answer]:
                    if part is not None:
                        writer.write(_frame_service(part))
                await writer.drain()
        if service == "com.apple.mobile.diagnostics_relay" and device.restarts and device.attached:
            # The device goes down when the connection that asked for the restart closes.
            await self._detach(device.udid)
            await asyncio.sleep(0.3)
            await self._attach(device)

    # -- lockdownd ------------------------------------------------------------------------
    def _lockdownd(
        self, _server: FakeUsbmuxd, device: FakeIPhone, msg: dict[str, Any]
    ) -> dict[str, Any]:
        request = msg.get("Request", "")
        self.requests.append(request)
        reply: dict[str, Any] = {"Request": request}
        if request == "QueryType":
            reply["Type"] = "com.apple.mobile.lockdown"
        elif request == "GetValue":
            domain, key = msg.get("Domain"), msg.get("Key")
            if domain == "com.apple.security.mac.amfi" and key == "DeveloperModeStatus":
                reply["Value"] = device.developer_mode
            elif domain is None and key is None:
                reply["Value"] = device.values()
            elif domain is None and key in device.values():
                reply["Value"] = device.values()[key]
            else:
                reply["Error"] = "MissingValue"
        elif request == "StartSession":
            if not device.paired or msg.get("HostID") != device.host_id:
                reply["Error"] = "InvalidHostID"
            else:
                reply.update(SessionID="fake-session", EnableSessionSSL=False)
        elif request == "Pair":
            if device.locked:
                # The Trust dialog only shows on an unlocked screen: lockdownd refuses a new
                # pairing of a locked device (pymobiledevice3 maps it to PasswordRequiredError).
                reply["Error"] = "PasswordProtected"
            elif device.trust == "accept":
                device.paired, device.host_id = True, msg["PairRecord"]["HostID"]
                reply["EscrowBag"] = b"fake-escrow-bag"
            else:
                reply["Error"] = {"pending": "PairingDialogResponsePending"}.get(
                    device.trust, "UserDeniedPairing"
                )
        elif request == "StopSession":
            reply["Result"] = "Success"
        elif request == "StartService":
            name = msg["Service"]
            # A locked device that is paired (a session started with this host's pair
            # record, whose escrow bag unlocks the keybag) starts services as an unlocked
            # one does: a real lockdownd does not refuse them. What fails is further in:
            # a DVT launch (SpringBoard refuses, reason "Locked") and mounting the Developer
            # Disk Image ("DeviceLocked"), both played in fake_developer.py.
            if name not in SERVICES and name not in STREAM_SERVICES:
                reply["Error"] = "InvalidService"
            else:
                self._next_port += 1
                self._services[(device.udid, self._next_port)] = name
                reply.update(Service=name, Port=self._next_port, EnableServiceSSL=False)
        else:
            reply["Error"] = "UnsupportedRequest"
        return reply


def _diagnostics(_server: FakeUsbmuxd, device: FakeIPhone, msg: dict[str, Any]) -> dict[str, Any]:
    if msg.get("Request") == "IORegistry" and msg.get("EntryClass") == "IOPMPowerSource":
        battery = {"CurrentCapacity": device.battery_percent, "IsCharging": device.charging,
                   "Temperature": device.temperature_raw}  # fmt: skip
        return {"Status": "Success", "Diagnostics": {"IORegistry": battery}}
    if msg.get("Request") == "Restart":
        device.restarts += 1
        device.ddi_mounted = False  # a mounted image does not survive a reboot
        return {"Status": "Success"}
    return {"Status": "UnknownRequest"}


def _installation_proxy(
    _server: FakeUsbmuxd, device: FakeIPhone, msg: dict[str, Any]
) -> dict[str, Any] | list[dict[str, Any]]:
    if msg.get("Command") in ("Install", "Upgrade"):
        return _install(device, str(msg.get("PackagePath")))
    if msg.get("Command") == "Lookup":
        wanted = msg.get("ClientOptions", {}).get("BundleIDs")
        apps = {b: a for b, a in device.apps.items() if wanted is None or b in wanted}
        return {"LookupResult": apps, "Status": "Complete"}
    return {"Error": "UnknownCommand", "ErrorDescription": str(msg.get("Command"))}


def _install(device: FakeIPhone, path: str) -> dict[str, Any] | list[dict[str, Any]]:
    """Install the .ipa staged over AFC: the app's Info.plist decides what gets installed."""
    data = device.staging.get(path)
    if data is None:
        return {"Error": "PackageNotFound", "ErrorDescription": f"no package at {path}"}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as ipa:
            [plist] = [
                n for n in ipa.namelist() if re.fullmatch(r"Payload/[^/]+\.app/Info\.plist", n)
            ]
            info = plistlib.loads(ipa.read(plist))
        bundle, version = str(info["CFBundleIdentifier"]), str(info["CFBundleVersion"])
    except (zipfile.BadZipFile, ValueError, KeyError, plistlib.InvalidFileException) as error:
        return {
            "Error": "ApplicationVerificationFailed",
            "ErrorDescription": f"bad package: {error!r}",
        }
    device.apps[bundle] = {"CFBundleIdentifier": bundle, "CFBundleVersion": version}
    device.installs += 1
    return [{"Status": "CreatingStagingDirectory", "PercentComplete": 5},
            {"Status": "InstallingApplication", "PercentComplete": 60},
            {"Status": "Complete"}]  # fmt: skip


SERVICES = {
    "com.apple.mobile.diagnostics_relay": _diagnostics,
    "com.apple.mobile.installation_proxy": _installation_proxy,
}
STREAM_SERVICES = {"com.apple.afc": serve_afc}
