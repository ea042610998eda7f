"""Policy configuration (frozen; saved as JSON beside every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from habc.errors import ConfigError


@dataclass(frozen=True)
class PolicyConfig:
    """Flow-matching action-chunk policy.

    The paper's robot defaults are H = 50 / execution 25 at 30 Hz; this sim preset scales them
    down to 16 / 8.
    """

    chunk_horizon: int = 16
    """Train chunk length H: actions predicted per inference call."""
    exec_horizon: int = 8
    """Execution chunk: actions of each predicted chunk executed before predicting again."""
    hidden_dim: int = 512
    """Width of the velocity network's residual MLP."""
    num_blocks: int = 3
    """Residual blocks in the velocity network."""
    time_embed_dim: int = 64
    """Sinusoidal embedding width of the flow time."""
    num_inference_steps: int = 10
    """Euler steps from noise to action at inference."""
    flow_time_alpha: float = 1.5
    """Beta(alpha, beta) flow-time distribution during training: alpha."""
    flow_time_beta: float = 1.0
    """Beta(alpha, beta) flow-time distribution during training: beta."""
    state_std_floor: float = 0.05
    """Lower bound on a state dimension's std during normalisation, so that dimensions that
    barely moved in a few demos do not blow up when later data leaves their range."""
    state_clip: float = 5.0
    """Normalised states are clipped to [-state_clip, state_clip]."""
    cameras: tuple[str, ...] = ()
    """Cameras the policy sees besides the state (e.g. corner2); empty: state only."""
    image_size: int = 64
    """Height and width of every camera frame (the datasets' and the rendered ones)."""
    image_shift: int = 4
    """Training augmentation: frames are shifted by up to this many pixels (0: off)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))  # JSON gives a list
        if self.chunk_horizon < 1:
            raise ConfigError("chunk_horizon must be >= 1")
        if not 1 <= self.exec_horizon <= self.chunk_horizon:
            raise ConfigError("exec_horizon must lie in [1, chunk_horizon]")
        if self.hidden_dim < 8 or self.num_blocks < 1 or self.time_embed_dim < 2:
            raise ConfigError("hidden_dim >= 8, num_blocks >= 1 and time_embed_dim >= 2")
        if self.num_inference_steps < 1:
            raise ConfigError("num_inference_steps must be >= 1")
        if self.flow_time_alpha <= 0 or self.flow_time_beta <= 0:
            raise ConfigError("flow-time Beta parameters must be > 0")
        if self.state_std_floor <= 0 or self.state_clip <= 0:
            raise ConfigError("state_std_floor and state_clip must be > 0")
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras {list(self.cameras)} name one camera twice")
        if self.image_size < 8 or not 0 <= self.image_shift < self.image_size // 2:
            raise ConfigError("image_size must be >= 8 and image_shift in [0, image_size / 2)")
