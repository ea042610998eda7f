"""Policy: a flow-matching action-chunk policy (SPEC §5) and its checkpoints."""

from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy, load_policy

__all__ = ["FlowMatchingPolicy", "PolicyConfig", "load_policy"]
