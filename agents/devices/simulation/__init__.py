"""The behaviour model behind SIMULATED devices (documented in docs/simulation.md)."""
