"""The behaviour model behind SIMULATED devices (every figure in docs/simulation.md).

``farm`` parses farm specs, ``faults`` the fault scripts; ``chips`` (rates), ``support``
(which unit can run an op), ``placement`` (per compute-units setting), ``latency`` (time),
``thermal`` (heat and throttling) and ``profile`` (all of it for one model on one chip) make
the device; ``plan`` is its MLComputePlan and ``runner`` the simulated runner; ``nights``
(and ``nights_file``, its reader) is the farm over many nights: timeline, noise, regressions;
``model_cache`` keeps each model's inspection and profile per night, ``symptoms`` words what
a fault looks like from the outside (readiness reasons, crash report, an interrupted slot).
"""
