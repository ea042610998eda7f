"""Weighting: advantages, the gate, bounded weights, and the weighting rules of every method."""
