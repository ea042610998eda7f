"""Rollout: actors (policy, scripted expert) and the episode runner."""
