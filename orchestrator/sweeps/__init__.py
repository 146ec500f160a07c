"""Nightly sweeps (issue 17): scheduled batches over many models and device generations,
with history per series.

- ``definition``: the YAML file, validated (pydantic, one line per problem), its globs;
- ``store``: add/update (with what changed), list, show, remove, pause/resume;
- ``nights``: a night is a job (``start_night``, what `sweep run` and the scheduler call);
- ``missing``: "missing is data" — a series with no point tonight has a stored reason;
- ``history``: the typed points of a sweep's series, night by night;
- ``schedule``: firing due nights inside the coordinator.
"""
