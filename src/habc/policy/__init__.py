"""Policy: the actor interface, its checkpoints and the built-in flow-matching policy (SPEC §5)."""

from habc.policy.backend import ChunkPolicy, Observation, load_policy
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy

__all__ = ["ChunkPolicy", "FlowMatchingPolicy", "Observation", "PolicyConfig", "load_policy"]
