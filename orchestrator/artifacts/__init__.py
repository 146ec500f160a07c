"""The content-addressed model store."""

from orchestrator.artifacts.store import ArtifactStore, StoredArtifact

__all__ = ["ArtifactStore", "StoredArtifact"]
