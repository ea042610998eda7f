"""Stage-aware dense progress reward model (SPEC §8) for the ``rabc`` method."""
