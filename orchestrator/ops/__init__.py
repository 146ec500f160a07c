"""Operating a deployed farm: ``doctor`` checks a deployment's settings and services and
says what to fix (``anefarm doctor``)."""
