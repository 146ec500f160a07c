"""Real USB iPhones and iPads through pymobiledevice3 (the iOS driver)."""

from agents.devices.ios.device import IOSDevice
from agents.devices.ios.discovery import list_ios_devices, watch_devices
from agents.devices.ios.readiness import HealthLimits, RunnerConfig

__all__ = ["HealthLimits", "IOSDevice", "RunnerConfig", "list_ios_devices", "watch_devices"]
