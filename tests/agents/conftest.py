"""Fixtures of the agent tests: the Device contract's parametrized device cases."""

from tests.agents.device_contract import contract_model, device_case

__all__ = ["contract_model", "device_case"]
