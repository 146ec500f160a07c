"""Devices an agent can drive, all behind the Device interface of ``base``."""
