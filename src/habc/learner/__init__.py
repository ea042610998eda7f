"""Learner: batches of windows, the weighted flow-matching update and the training loop."""
