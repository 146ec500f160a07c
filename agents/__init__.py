"""anefarm agents: run on each Mac host and drive its devices (real or SIMULATED)."""
