"""Optimiser state as flat tensors, so that it can live in safetensors files (no pickles)."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor


def flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """``{f"{prefix}.{param_index}.{key}": tensor}`` for every per-parameter state entry."""
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    return out


def restore_optimizer(prefix: str, optimizer: torch.optim.Optimizer,
                      tensors: dict[str, Tensor]) -> None:
    """Load the entries of ``tensors`` written by ``flatten_optimizer`` under ``prefix``."""
    state: dict[int, dict[str, Tensor]] = defaultdict(dict)
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, index, key = name.split(".", 2)
            state[int(index)][key] = value
    optimizer.load_state_dict({"state": dict(state),
                               "param_groups": optimizer.state_dict()["param_groups"]})
