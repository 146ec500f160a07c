"""The message broker: the embedded Redis anefarm starts itself on one machine."""
