"""Evaluation: success rate with a Wilson interval, mean success length, parallel trials."""
