"""The online learner: every method updates, weights apply, save/load resumes exactly."""

import dataclasses

import numpy as np
import pytest
import torch

from habc.credit.labels import NO_LABEL, FrameKind
from habc.critic.config import CriticConfig
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError
from habc.learner.online import (
    LearnerConfig,
    OnlineLearner,
    ema_update,
    imitates_failed_rollouts,
    perturb_states,
    prepare_data,
    sample_anchors,
)
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy
from habc.weighting import advantages as adv
from habc.weighting.rules import RULES, HabcRule, RejectionRule
from tests.conftest import make_episode

SMALL = PolicyConfig(chunk_horizon=5, exec_horizon=2, hidden_dim=32, num_blocks=1,
                     time_embed_dim=8, num_inference_steps=2)
CONFIG = LearnerConfig(batch_size=32, critic=CriticConfig(hidden_dim=16, num_blocks=1,
                                                          value_bins=11),
                       validation_every=2, recap_threshold_every=2)


@pytest.fixture
def data(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    episodes = [make_episode(rng, 12) for _ in range(3)]
    for i in range(8):
        span = (3, 9) if i % 2 else None
        episodes.append(make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=i % 3 == 0,
                                     seed=100 + i, human_span=span))
    store.append(episodes)
    return prepare_data(store.read(), horizon=5, k=1, naive=False, critic_use_demos=False,
                        validation_every=2)


def policy(data):
    torch.manual_seed(0)
    p = FlowMatchingPolicy(SMALL, 39, 4)
    p.normalizer.fit(data.arrays.state, -np.ones(4), np.ones(4))
    return p


@pytest.mark.parametrize("method", ["sft", "dagger", "recap", "habc_v", "habc", "habc_ir",
                                    "hiors"])
def test_every_method_updates(data, method):
    rule = HabcRule(warmup_steps=1) if method.startswith("habc") else RULES[method]
    learner = OnlineLearner(policy(data), rule, CONFIG, t_max=20, method=method)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in learner.policy.parameters()]
    for _ in range(3):
        stats = learner.update(data, rng, g)
    assert learner.step == 3
    assert all(np.isfinite(v) for v in stats.values())
    assert "actor/loss" in stats
    changed = any(not torch.equal(a, b) for a, b in zip(before, learner.policy.parameters(),
                                                        strict=True))
    assert changed
    if method in ("habc", "habc_v", "habc_ir"):
        assert {"critic/loss_v", "critic/loss_e", "adv/gate_mean"} <= set(stats)
    if method == "recap":
        assert "recap_pass_per_100" in stats and "critic/loss_value" in stats
    if method == "hiors":
        assert learner.critic is None and learner.value is None


def test_sources_of_each_method(data):
    rng = np.random.default_rng(0)
    kinds = data.labels.kind
    sft = sample_anchors(data.pools, {"demo": 1.0}, 200, rng)
    assert (kinds[sft] == FrameKind.DEMO).all()
    dagger = sample_anchors(data.pools, {"demo": 0.5, "human": 0.5}, 400, rng)
    assert set(kinds[dagger]) == {FrameKind.DEMO, FrameKind.HUMAN}
    assert data.intervention_window[dagger[kinds[dagger] == FrameKind.HUMAN]].all()
    assert abs((kinds[dagger] == FrameKind.HUMAN).mean() - 0.5) < 0.1
    empty = {**data.pools, "human": np.zeros(0, dtype=np.int64)}
    assert (kinds[sample_anchors(empty, {"demo": 0.5, "human": 0.5}, 50, rng)] ==
            FrameKind.DEMO).all()


def test_hiors_draws_demos_and_accepted_rollout_frames(data):
    """Accepted: every frame of a successful rollout, and the operator's frames of any."""
    learner = OnlineLearner(policy(data), RULES["hiors"], CONFIG, t_max=20, method="hiors")
    anchors = sample_anchors(data.pools, learner.shares(), 2000, np.random.default_rng(0))
    kinds, ok = data.labels.kind[anchors], data.labels.episode_success[anchors]
    rollout = kinds != FrameKind.DEMO
    assert abs((~rollout).mean() - CONFIG.demo_fraction) < 0.05
    assert (ok[rollout] | (kinds[rollout] == FrameKind.HUMAN)).all()
    assert {FrameKind.AUTONOMOUS, FrameKind.PRE_INTERVENTION, FrameKind.HUMAN,
            FrameKind.SUFFIX} <= set(kinds[rollout])
    assert (~ok[kinds == FrameKind.HUMAN]).any()  # corrections of failed episodes too


def test_save_load_resumes_identically(data, tmp_path):
    def run(learner, steps, seed):
        rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        for _ in range(steps):
            learner.update(data, rng, g)

    a = OnlineLearner(policy(data), HabcRule(warmup_steps=2), CONFIG, t_max=20, method="habc")
    run(a, 4, 0)
    a.save(tmp_path / "ckpt", policy_version=1)
    b = OnlineLearner(policy(data), HabcRule(warmup_steps=2), CONFIG, t_max=20, method="habc")
    b.load(tmp_path / "ckpt")
    assert b.step == 4 and b.scale_v.state() == a.scale_v.state()
    run(a, 2, 1)
    run(b, 2, 1)
    for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert a.critic is not None and b.critic is not None
    for p, q in zip(a.critic.parameters(), b.critic.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def rabc_learner(data):
    return OnlineLearner(policy(data), RULES["rabc"], CONFIG, t_max=20, method="rabc",
                         num_stages=(2,))


def with_stages(data):
    """Stage 0 in the first half of each episode, 1 in the second."""
    arrays = data.arrays
    t = np.arange(arrays.num_frames) - arrays.episode_starts[arrays.frame_episode]
    length = (arrays.episode_ends - arrays.episode_starts)[arrays.frame_episode]
    return prepare_data(arrays, horizon=5, k=1, naive=False, critic_use_demos=False,
                        validation_every=2, stage=(2 * t // length).astype(np.int64))


def test_rabc_trains_its_progress_model_on_successful_episodes_outside_the_held_out(data):
    staged = with_stages(data)
    pool = staged.pools["progress"]
    assert staged.labels.episode_success[pool].all() and not staged.validation[pool].any()
    assert (staged.labels.kind[pool] == FrameKind.DEMO).any()
    learner = rabc_learner(staged)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    stats = [learner.update(staged, rng, g) for _ in range(3)]
    assert all("progress/loss" in s and "actor/loss" in s for s in stats)
    held = learner.progress_heldout(staged)
    held_frames = staged.validation & staged.labels.episode_success
    assert held["progress/heldout_frames"] == held_frames.sum() > 0
    assert 0.0 <= held["progress/heldout_mse"] <= 1.0


def test_hiors_with_a_reward_model_trains_it_and_draws_accepted_frames(data):
    staged = with_stages(data)
    learner = OnlineLearner(policy(staged), RejectionRule(reward="progress"), CONFIG, t_max=20,
                            method="hiors", num_stages=(2,))
    assert learner.progress is not None and learner.shares()["accepted"] > 0
    stats = learner.update(staged, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert "progress/loss" in stats and "progress/no_progress_fraction" in stats


def test_rabc_needs_the_stage_count():
    with pytest.raises(ConfigError, match="stage"):
        OnlineLearner(FlowMatchingPolicy(SMALL, 39, 4), RULES["rabc"], CONFIG, t_max=20,
                      method="rabc")


def test_rabc_progress_model_survives_save_and_load(data, tmp_path):
    staged = with_stages(data)
    a = rabc_learner(staged)
    a.update(staged, np.random.default_rng(0), torch.Generator().manual_seed(0))
    a.save(tmp_path / "ckpt")
    b = rabc_learner(staged)
    b.load(tmp_path / "ckpt")
    assert a.progress is not None and b.progress is not None
    for p, q in zip(a.progress.parameters(), b.progress.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_critic_learns_viability_ordering(data):
    """After training, successful autonomous frames score higher viability than failed ones."""
    learner = OnlineLearner(policy(data), HabcRule(warmup_steps=10_000), CONFIG, t_max=20,
                            method="habc")
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(150):
        learner.update(data, rng, g)
    labels = data.labels
    auto = labels.kind == FrameKind.AUTONOMOUS
    with torch.no_grad():
        v, _ = learner.critic(torch.from_numpy(data.arrays.state))
    assert v[torch.from_numpy(auto & labels.episode_success)].mean() > \
        v[torch.from_numpy(auto & ~labels.episode_success)].mean()


def test_critic_logs_the_efficiency_heads_error_against_true_steps_to_success(data):
    learner = OnlineLearner(policy(data), HabcRule(), CONFIG, t_max=20, method="habc")
    labels = data.labels
    anchors = np.flatnonzero(labels.succ_target_valid)[:6]
    s_t = torch.from_numpy(data.arrays.state[anchors])
    with torch.no_grad():
        _, e = learner.critic(s_t)  # before the step's update
    steps_to_go = labels.steps_to_end[anchors] + 1  # T_succ - t + 1
    stats = learner._critic_step(data, anchors, s_t)
    assert stats["critic/e_abs_error"] == pytest.approx(
        float(np.abs(e.numpy() - steps_to_go).mean()), rel=1e-5)
    no_success = np.flatnonzero(~labels.succ_target_valid)[:6]
    assert "critic/e_abs_error" not in learner._critic_step(
        data, no_success, torch.from_numpy(data.arrays.state[no_success]))


@pytest.mark.parametrize("k", [1, 3])
def test_batched_advantages_agree_with_plain_loop(data, k):
    """A_v and A_e of the learner vs a per-frame loop over SPEC §4 (terminal handling incl.)."""
    cfg = LearnerConfig(batch_size=32, advantage_horizon=k,
                        critic=CriticConfig(hidden_dim=16, num_blocks=1))
    learner = OnlineLearner(policy(data), HabcRule(), cfg, t_max=20, method="habc")
    d = prepare_data(data.arrays, horizon=5, k=k, naive=False, critic_use_demos=False,
                     validation_every=2)
    anchors = np.arange(d.arrays.num_frames)
    states = torch.from_numpy(d.arrays.state)
    kinds = torch.from_numpy(d.labels.kind.astype(np.int64))
    signals = learner._habc_signals(d, anchors, states[anchors], kinds)
    with torch.no_grad():
        v, e = learner.critic(states)
    arrays = d.arrays
    for t in anchors:
        ep = arrays.frame_episode[t]
        last = arrays.episode_ends[ep] - 1
        if t + k <= last:
            v_next, e_next = v[t + k], e[t + k]
        elif arrays.success[ep]:
            v_next, e_next = 6.0, 0.0
        else:
            v_next, e_next = -6.0, e[last]
        assert signals.a_v[t].item() == pytest.approx(float(v_next - v[t]), abs=1e-5)
        charged = min(k, last - t + 1)  # past the end, only the steps the episode had left
        assert signals.a_e[t].item() == pytest.approx(float(e[t] - charged - e_next), abs=1e-4)


@pytest.mark.parametrize("estimator", ["std", "robust"])
def test_advantage_scale_is_the_chosen_spread_of_the_scored_advantages(data, estimator):
    """First batch: s_v and s_e are the std (SPEC) or the robust scale of the scored frames."""
    cfg = LearnerConfig(batch_size=32, advantage_scale=estimator,
                        critic=CriticConfig(hidden_dim=16, num_blocks=1))
    learner = OnlineLearner(policy(data), HabcRule(), cfg, t_max=20, method="habc")
    anchors = np.arange(data.arrays.num_frames)
    kinds = torch.from_numpy(data.labels.kind.astype(np.int64))
    signals = learner._habc_signals(data, anchors, torch.from_numpy(data.arrays.state), kinds)
    scored = (kinds != FrameKind.DEMO) & (kinds != FrameKind.PRE_INTERVENTION)
    for a, scale in ((signals.a_v, signals.scale_v), (signals.a_e, signals.scale_e)):
        spread = (float(a[scored].std(unbiased=False)) if estimator == "std"
                  else adv.robust_scale(a[scored]))
        assert scale == pytest.approx(spread, rel=1e-5)


def test_imitable_pool_holds_human_steps_and_successful_policy_steps(data):
    kind, ok = data.labels.kind, data.labels.episode_success
    policy_step = (kind == FrameKind.AUTONOMOUS) | (kind == FrameKind.SUFFIX)
    expected = np.flatnonzero((kind == FrameKind.HUMAN) | (policy_step & ok))
    assert np.array_equal(data.pools["rollout_imitable"], expected)
    assert np.array_equal(data.pools["own_imitable"], np.flatnonzero(policy_step & ok))
    # the fixture has failed rollouts and pre-intervention steps, which the pool leaves out
    assert len(expected) < len(data.pools["rollout"])


def test_failed_rollouts_join_the_imitable_pools_for_a_rule_that_weights_them(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    store.append([make_episode(rng, 12),  # demo: 0-11
                  make_episode(rng, 10, source=EpisodeSource.ROLLOUT, success=False, seed=1),
                  # 12-21: autonomous failure
                  make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=False, seed=2,
                               human_span=(4, 8))])  # 22-36: pre 22-25, human 26-29, suffix 30-36
    kwargs = {"horizon": 5, "k": 1, "naive": False, "critic_use_demos": False,
              "validation_every": 100}
    spec = prepare_data(store.read(), **kwargs)
    both = prepare_data(store.read(), **kwargs, imitate_failed_rollouts=True)
    failed_policy = [*range(12, 22), *range(30, 37)]
    assert spec.pools["own_imitable"].tolist() == []
    assert both.pools["own_imitable"].tolist() == failed_policy
    assert both.pools["rollout_imitable"].tolist() == [*range(12, 22), *range(26, 37)]
    assert spec.pools["rollout_imitable"].tolist() == list(range(26, 30))  # the operator's
    assert np.array_equal(both.pools["rollout"], spec.pools["rollout"])
    assert not imitates_failed_rollouts(HabcRule())
    assert not imitates_failed_rollouts(RULES["dagger"])
    assert imitates_failed_rollouts(HabcRule(failed_rollout_weight="habc_positive"))


def test_weighted_actor_batches_spend_no_sample_on_label_zero_frames(data):
    cfg = dataclasses.replace(CONFIG, actor_batches="weighted")
    rule = HabcRule(warmup_steps=0)
    shared = OnlineLearner(policy(data), rule, CONFIG, t_max=20, method="habc")
    weighted = OnlineLearner(policy(data), rule, cfg, t_max=20, method="habc")
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(3):
        assert shared.update(data, rng, g)["zero_weight_fraction"] > 0
        stats = weighted.update(data, rng, g)
        assert stats["zero_weight_fraction"] == 0 and stats["n_valid"] == cfg.batch_size
        assert stats["critic/labelled_fraction"] > 0  # the critic still sees failures
    with pytest.raises(ConfigError, match="weighted"):
        OnlineLearner(policy(data), RULES["dagger"], cfg, t_max=20, method="dagger")
    with pytest.raises(ConfigError, match="weighted"):
        OnlineLearner(policy(data), HabcRule(naive_credit=True), cfg, t_max=20, method="habc")


def test_weighted_actor_batches_draw_failed_rollouts_when_the_rule_weights_them(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    store.append([make_episode(rng, 12),
                  *(make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=False,
                                 seed=s) for s in range(3))])
    data = prepare_data(store.read(), horizon=5, k=1, naive=False, critic_use_demos=False,
                        validation_every=100, imitate_failed_rollouts=True)
    cfg = dataclasses.replace(CONFIG, actor_batches="weighted")
    learner = OnlineLearner(policy(data), HabcRule(warmup_steps=0, failed_rollout_weight="habc"),
                            cfg, t_max=20, method="habc")
    stats = learner.update(data, np.random.default_rng(0), torch.Generator().manual_seed(0))
    # a quarter demos, the rest the failed rollouts' steps, which this rule weights
    assert stats["actor/demo_fraction"] == pytest.approx(0.25, abs=0.1)
    assert stats["zero_weight_fraction"] == 0 and stats["n_valid"] == cfg.batch_size


def test_boundary_margin_takes_frames_near_a_takeover_out_of_labels_and_pools(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    store.append([make_episode(rng, 12),  # demo: 0-11
                  make_episode(rng, 20, source=EpisodeSource.ROLLOUT, success=True, seed=1,
                               human_span=(5, 10))])  # 12-31: human 17-21, changes at 17, 22
    kwargs = {"horizon": 5, "k": 1, "naive": False, "critic_use_demos": False,
              "validation_every": 3}
    spec = prepare_data(store.read(), **kwargs)
    guarded = prepare_data(store.read(), **kwargs, boundary_margin=2)
    band = [15, 16, 17, 18, 20, 21, 22, 23]
    assert np.flatnonzero(guarded.labels.kind == FrameKind.BOUNDARY).tolist() == band
    assert (guarded.labels.outcome_label[band] == NO_LABEL).all()
    assert not guarded.labels.succ_target_valid[band].any()
    assert spec.labels.outcome_label[22:24].tolist() == [1, 1]  # SPEC: suffix, labelled
    for pool in ("rollout_imitable", "human", "own_imitable"):
        assert not set(band) & set(guarded.pools[pool].tolist())
    assert set(guarded.pools["rollout_imitable"].tolist()) \
        == set(spec.pools["rollout_imitable"].tolist()) - set(band)
    assert np.array_equal(guarded.pools["rollout"], spec.pools["rollout"])  # the critic sees all
    with pytest.raises(ConfigError, match="boundary_margin"):
        LearnerConfig(boundary_margin=-1)


def test_failed_takeovers_can_be_left_out_of_the_actor_pools(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    store.append([make_episode(rng, 12),
                  make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=False, seed=1,
                               human_span=(5, 15)),  # the operator failed to the end: 17-26
                  make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=True, seed=2,
                               human_span=(5, 15))])  # the operator finished: 32-41
    kwargs = {"horizon": 5, "k": 1, "naive": False, "critic_use_demos": False,
              "validation_every": 2}
    every = prepare_data(store.read(), **kwargs)
    kept = prepare_data(store.read(), **kwargs, imitate_failed_takeovers=False)
    failed = set(range(17, 27))
    assert failed <= set(every.pools["rollout_imitable"].tolist())
    assert not failed & set(kept.pools["rollout_imitable"].tolist())
    assert not failed & set(kept.pools["human"].tolist())
    assert set(kept.pools["human"].tolist()) == set(every.pools["human"].tolist()) - failed
    assert set(range(32, 42)) <= set(kept.pools["human"].tolist())
    assert np.array_equal(kept.pools["rollout"], every.pools["rollout"])  # the critic sees all
    cfg = dataclasses.replace(CONFIG, imitate_failed_takeovers=False)
    OnlineLearner(policy(kept), RULES["dagger"], cfg, t_max=20, method="dagger")
    with pytest.raises(ConfigError, match="imitate_failed_takeovers"):
        OnlineLearner(policy(kept), HabcRule(), cfg, t_max=20, method="habc")


def test_held_out_episodes_do_not_train_the_critic(data):
    learner = OnlineLearner(policy(data), HabcRule(), CONFIG, t_max=20, method="habc")
    labelled = data.labels.outcome_label != NO_LABEL
    held = np.flatnonzero(data.validation & labelled)[:8]
    assert len(held) > 0
    before = [p.detach().clone() for p in learner.critic.parameters()]
    stats = learner._critic_step(data, held, torch.from_numpy(data.arrays.state[held]))
    assert stats["critic/loss_v"] == 0.0 and stats["critic/labelled_fraction"] == 0.0
    assert "critic/brier" not in stats and "critic/e_abs_error" not in stats
    # no loss, no gradient: AdamW's weight decay is the only change
    decay = 1 - learner.critic_opt.param_groups[0]["lr"] * CONFIG.weight_decay
    for p, q in zip(before, learner.critic.parameters(), strict=True):
        torch.testing.assert_close(q, p * decay)


def test_critic_heldout_scores_the_held_out_frames(data):
    learner = OnlineLearner(policy(data), HabcRule(), CONFIG, t_max=20, method="habc")
    labels = data.labels
    labelled = labels.outcome_label != NO_LABEL
    held = data.validation & labelled
    with torch.no_grad():
        v, e = learner.critic(torch.from_numpy(data.arrays.state[held]))
    p = torch.sigmoid(v).numpy()
    y = labels.outcome_label[held].astype(np.float64)
    base = labels.outcome_label[labelled & ~data.validation].mean()
    stats = learner.critic_heldout(data)
    assert stats["critic/heldout_frames"] == held.sum()
    # fixture: rollouts i = 0..7 succeed when i % 3 == 0; every 2nd is held out (i = 1, 3, 5,
    # 7), each with outcome-labelled frames after its takeover; of them only i = 3 succeeded
    assert stats["critic/heldout_episodes"] == 4 and stats["critic/heldout_successes"] == 1
    assert stats["critic/heldout_brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    assert stats["critic/heldout_brier_skill"] == pytest.approx(
        1 - np.mean((p - y) ** 2) / np.mean((base - y) ** 2), rel=1e-5)
    succ = labels.succ_target_valid[held]
    assert succ.any()
    truth = labels.steps_to_end[held] + 1
    assert stats["critic/heldout_e_abs_error"] == pytest.approx(
        np.abs(e.numpy() - truth)[succ].mean(), rel=1e-5)
    no_holdout = dataclasses.replace(data, validation=np.zeros_like(data.validation))
    assert learner.critic_heldout(no_holdout) == {}


@pytest.mark.parametrize("method", ["recap", "habc"])
def test_a_held_critic_weights_the_actor_without_training(data, method):
    rule = HabcRule(warmup_steps=1) if method == "habc" else RULES[method]
    learner = OnlineLearner(policy(data), rule, CONFIG, t_max=20, method=method)
    net = learner.critic if learner.critic is not None else learner.value
    assert net is not None and learner.target is not None
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    learner.update(data, rng, g)  # one trained step, so that held steps differ from fresh ones
    critic = [p.detach().clone() for p in (*net.parameters(), *learner.target.parameters())]
    actor = [p.detach().clone() for p in learner.policy.parameters()]
    for _ in range(2):
        stats = learner.update(data, rng, g, train_critic=False)
    assert learner.step == 3 and "actor/loss" in stats
    assert not any(key.startswith("critic/") for key in stats)
    for before, after in zip(critic, (*net.parameters(), *learner.target.parameters()),
                             strict=True):
        assert torch.equal(before, after)
    assert any(not torch.equal(a, b) for a, b in zip(actor, learner.policy.parameters(),
                                                     strict=True))
    if method == "habc":
        assert stats["adv/gate_mean"] > 0  # the held critic still scores the batch


def test_critic_steps_per_round_must_be_positive():
    with pytest.raises(ConfigError, match="critic_steps_per_round"):
        LearnerConfig(critic_steps_per_round=0)


def test_actor_human_fraction_fixes_the_operators_share_of_actor_batches(data):
    cfg = dataclasses.replace(CONFIG, actor_batches="weighted", demo_fraction=0.25,
                              actor_human_fraction=0.5)
    learner = OnlineLearner(policy(data), HabcRule(warmup_steps=0), cfg, t_max=20,
                            method="habc")
    assert learner.shares(actor=True) == {"demo": 0.25, "human": 0.5, "own_imitable": 0.25}
    assert learner.shares() == {"demo": 0.25, "rollout": 0.75}  # the critic's batch: as before
    anchors = sample_anchors(data.pools, learner.shares(actor=True), 2000,
                             np.random.default_rng(0))
    kind = data.labels.kind[anchors]
    assert abs((kind == FrameKind.HUMAN).mean() - 0.5) < 0.05
    assert abs((kind == FrameKind.DEMO).mean() - 0.25) < 0.05
    own = anchors[(kind != FrameKind.DEMO) & (kind != FrameKind.HUMAN)]
    assert len(own) > 0 and data.labels.episode_success[own].all()
    assert set(kind[np.isin(anchors, own)]) <= {FrameKind.AUTONOMOUS, FrameKind.SUFFIX}
    stats = learner.update(data, np.random.default_rng(1), torch.Generator().manual_seed(0))
    assert stats["zero_weight_fraction"] == 0
    assert 0 < stats["actor/operator_fraction"] < 1 and 0 < stats["actor/demo_fraction"] < 1


@pytest.mark.parametrize(("batches", "share", "match"), [
    ("shared", 0.5, "weighted"), ("weighted", 0.8, r"1 - demo_fraction"),
    ("weighted", -0.1, r"1 - demo_fraction")])
def test_actor_human_fraction_is_checked(batches, share, match):
    with pytest.raises(ConfigError, match=match):
        LearnerConfig(actor_batches=batches, demo_fraction=0.25, actor_human_fraction=share)


@pytest.mark.parametrize(("method", "human_share", "demo", "operator"), [
    ("sft", 0.5, 1.0, 0.0), ("dagger", 1.0, 0.0, 1.0), ("dagger", 0.0, 1.0, 0.0)])
def test_learner_logs_the_actor_batchs_demo_and_operator_shares(data, method, human_share, demo,
                                                                operator):
    cfg = dataclasses.replace(CONFIG, dagger_human_fraction=human_share)
    learner = OnlineLearner(policy(data), RULES[method], cfg, t_max=20, method=method)
    stats = learner.update(data, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert stats["actor/demo_fraction"] == demo
    assert stats["actor/operator_fraction"] == operator


def test_perturb_states_scales_unit_noise_by_each_dimensions_std():
    states = torch.tensor([[1.0, 10.0], [2.0, 20.0]])
    std = torch.tensor([0.5, 4.0])
    z = torch.randn((2, 2), generator=torch.Generator().manual_seed(3))
    out = perturb_states(states, std, 0.1, torch.Generator().manual_seed(3))
    # by hand: row 0 = [1 + 0.1 * 0.5 * z00, 10 + 0.1 * 4 * z01], and likewise for row 1
    expected = torch.stack([states[:, 0] + 0.05 * z[:, 0], states[:, 1] + 0.4 * z[:, 1]], 1)
    torch.testing.assert_close(out, expected)
    generator = torch.Generator().manual_seed(3)
    assert perturb_states(states, std, 0.0, generator) is states
    assert torch.equal(torch.randn(2, generator=generator), z.flatten()[:2])  # nothing drawn


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_critic_input_noise_perturbs_only_the_critics_training_states(data, sigma,
                                                                      monkeypatch):
    config = dataclasses.replace(CONFIG, critic=dataclasses.replace(CONFIG.critic,
                                                                    input_noise=sigma))
    learner = OnlineLearner(policy(data), HabcRule(), config, t_max=20, method="habc")
    seen = []
    critic_step = learner._critic_step

    def spy(data_, anchors, s_t, generator):
        seen.append(s_t - torch.from_numpy(data_.arrays.state[anchors]))
        return critic_step(data_, anchors, s_t, generator)

    monkeypatch.setattr(learner, "_critic_step", spy)
    learner.update(data, np.random.default_rng(0), torch.Generator().manual_seed(0))
    noise = seen[0] / torch.from_numpy(data.state_std)
    if sigma == 0:
        assert torch.count_nonzero(noise) == 0
    else:  # about N(0, sigma^2) in units of each dimension's std
        assert abs(float(noise.std()) - sigma) < 0.05 and abs(float(noise.mean())) < 0.05
    np.testing.assert_allclose(data.state_std, np.maximum(data.arrays.state.std(0), 1e-3),
                               rtol=1e-6)


def test_critic_input_noise_must_not_be_negative():
    with pytest.raises(ConfigError, match="input_noise"):
        CriticConfig(input_noise=-0.1)


def test_ema_update_hand_case():
    average, current = torch.nn.BatchNorm1d(1), torch.nn.BatchNorm1d(1)
    with torch.no_grad():
        average.weight.fill_(0.0)
        current.weight.fill_(1.0)
        current.running_mean.fill_(3.0)
    ema_update(average, current, decay=0.9)
    assert average.weight.item() == pytest.approx(0.1)  # 0.9 * 0 + 0.1 * 1
    assert average.running_mean.item() == 3.0  # buffers are copied


def test_actor_ema_is_the_published_policy_and_survives_save_and_load(data, tmp_path):
    config = dataclasses.replace(CONFIG, actor_ema=0.5)
    learner = OnlineLearner(policy(data), RULES["sft"], config, t_max=20, method="sft")
    before = [p.detach().clone() for p in learner.policy.parameters()]
    learner.update(data, np.random.default_rng(0), torch.Generator().manual_seed(0))
    deployed = learner.deployed_policy()
    assert deployed is not learner.policy
    for p_avg, p0, p in zip(deployed.parameters(), before, learner.policy.parameters(),
                            strict=True):
        torch.testing.assert_close(p_avg, 0.5 * p0 + 0.5 * p)  # one step of the average
    learner.save(tmp_path / "ckpt")
    again = OnlineLearner(policy(data), RULES["sft"], config, t_max=20, method="sft")
    again.load(tmp_path / "ckpt")
    for p, q in zip(deployed.parameters(), again.deployed_policy().parameters(), strict=True):
        torch.testing.assert_close(p, q)
    plain = OnlineLearner(policy(data), RULES["sft"], CONFIG, t_max=20, method="sft")
    assert plain.deployed_policy() is plain.policy
    with pytest.raises(ConfigError, match="actor_ema"):
        LearnerConfig(actor_ema=1.0)
