"""Credit assignment: which frames carry the episode outcome, and how they are used (SPEC §2)."""
