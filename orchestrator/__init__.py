"""anefarm coordinator: model analysis, dispatch, ingest, verdicts and reports."""

__version__ = "0.1.0"
