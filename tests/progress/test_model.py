"""The MMoE progress model: per-task stage masks, progress in [0, 1], and it learns."""

import torch

from habc.networks import Normalizer
from habc.progress.model import ProgressConfig, ProgressModel
from habc.progress.targets import dense_progress, progress_mse


def model(num_stages, state_dim=3):
    torch.manual_seed(0)
    return ProgressModel(state_dim, num_stages, ProgressConfig(hidden_dim=32, num_experts=2),
                         Normalizer(state_dim, 1, std_floor=1e-3, clip=10.0))


def test_a_task_never_predicts_a_stage_past_its_own_k():
    m = model((2, 4))
    logits, within = m(torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert logits.shape == (6, 4) and within.shape == (6,)
    assert torch.isinf(logits[:3, 2:]).all() and torch.isfinite(logits[3:]).all()
    assert ((within > 0) & (within < 1)).all()
    p = m.progress(torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert ((p >= 0) & (p <= 1)).all()


def test_model_learns_stage_and_within_stage_progress():
    """A toy task: state x in [0, 2), stage floor(x), within frac(x); progress x / 2."""
    m = model((2,), state_dim=1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    x_test = torch.rand(256, 1, generator=g) * 2
    task = torch.zeros(256, dtype=torch.int64)
    truth = dense_progress(x_test[:, 0].floor(), x_test[:, 0] % 1, 2)
    with torch.no_grad():
        before = progress_mse(m.progress(x_test, task), truth)
    for _ in range(400):
        x = torch.rand(256, 1, generator=g) * 2
        loss = m.per_sample_loss(x, task, x[:, 0].floor().long(), x[:, 0] % 1, 1.0).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = progress_mse(m.progress(x_test, task), truth)
    assert after < 0.01 < before
