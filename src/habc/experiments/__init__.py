"""Experiments: end-to-end jobs composed from the other stages."""
