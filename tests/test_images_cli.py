"""A policy that sees a camera, from the CLI: collect, train, evaluate, one online round.

The round's critic sees the camera too, and the report's critic traces read its frames.
"""

import json

import numpy as np
from safetensors.torch import load_file

from habc.cli import main
from habc.episodes.store import EpisodeStore, open_stores
from habc.policy.backend import load_policy
from habc.report.traces import RunCritic

TINY_CAMERA_POLICY = ["--policy.hidden-dim", "32", "--policy.num-blocks", "1",
                      "--policy.chunk-horizon", "4", "--policy.exec-horizon", "2",
                      "--policy.num-inference-steps", "2", "--policy.cameras", "corner2",
                      "--policy.image-size", "16", "--policy.image-shift", "2"]
LEARNER = ["--max-steps", "60", "--learner.batch-size", "8", "--learner.critic.hidden-dim", "16",
           "--habc.warmup-steps", "2", "--num-threads", "1", "--log-every", "2",
           "--ckpt-every", "2"]


def test_camera_policy_from_collect_to_an_online_round(tmp_path, capsys):
    demos, sft, online = tmp_path / "demos", tmp_path / "sft", tmp_path / "online"
    assert main(["collect", "--task", "reach", "--out", str(demos), "--num-episodes", "2",
                 "--max-steps", "150", "--cameras", "corner2", "--image-size", "16"]) == 0
    store = EpisodeStore.open(demos)
    assert store.image_shapes == {"corner2": (16, 16, 3)}
    assert json.loads((demos / "meta/info.json").read_text())["features"][
        "observation.images.corner2"]["dtype"] == "image"

    # Adding demos with another camera set to the store is refused.
    assert main(["collect", "--task", "reach", "--out", str(demos), "--num-episodes", "1",
                 "--max-steps", "150"]) == 2
    assert "keeps camera frames" in capsys.readouterr().err
    # A store of rollouts without frames, for `habc learn` to refuse below.
    assert main(["collect", "--task", "reach", "--out", str(tmp_path / "bad-rollouts"),
                 "--num-episodes", "1", "--max-steps", "150"]) == 0
    # A policy whose image size differs from the demos' is refused before training.
    assert main(["train", "--datasets", str(demos), "--run-dir", str(tmp_path / "bad"),
                 "--steps", "2", *TINY_CAMERA_POLICY, "--policy.image-size", "32"]) == 2
    assert "--policy.image-size" in capsys.readouterr().err

    assert main(["train", "--datasets", str(demos), "--run-dir", str(sft), "--steps", "6",
                 "--batch-size", "8", *TINY_CAMERA_POLICY]) == 0
    checkpoint = sft / "checkpoints/last"
    assert load_policy(checkpoint).config.cameras == ("corner2",)
    assert main(["eval", "--checkpoint", str(checkpoint), "--num-trials", "1", "--workers",
                 "1", "--max-steps", "20"]) == 0
    assert json.loads((checkpoint / "eval-reach.json").read_text())["n_trials"] == 1

    assert main(["online", "--sft-checkpoint", str(checkpoint), "--run-dir", str(online),
                 "--method", "habc", "--rounds", "1", "--rollouts-per-round", "2",
                 "--steps-per-round", "4",
                 *LEARNER, "--eval-trials", "1", "--workers", "1"]) == 0
    rollouts = open_stores([online / "rollouts"], cameras=("corner2",))
    assert rollouts.num_episodes == 2
    assert rollouts.images["corner2"].shape == (rollouts.num_frames, 16, 16, 3)
    assert rollouts.images["corner2"].std() > 0
    v1 = load_policy(online / "policies/v001")
    assert v1.config.cameras == ("corner2",)
    before = load_policy(checkpoint).image_encoders["corner2"].out.weight
    assert not np.allclose(v1.image_encoders["corner2"].out.weight.detach(), before.detach())
    critic_keys = load_file(str(online / "learner/latest/critic.safetensors"))
    assert any(".image_encoders.corner2." in k for k in critic_keys)
    critic = RunCritic(online)
    trace = critic.trace(critic.read_rollouts(), 0)
    assert len(trace.viability) == rollouts.lengths[0] and np.isfinite(trace.weight).all()

    # `habc learn` on the round's rollouts (frames included) publishes the same policy.
    learn = tmp_path / "learn"
    assert main(["learn", "--sft-checkpoint", str(checkpoint), "--rollouts",
                 str(online / "rollouts"), "--run-dir", str(learn), "--steps", "4",
                 *LEARNER]) == 0
    mine = load_file(str(learn / "policies/v001/model.safetensors"))
    theirs = load_file(str(online / "policies/v001/model.safetensors"))
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    # ... and refuses rollouts without the policy's camera.
    assert main(["learn", "--sft-checkpoint", str(checkpoint), "--rollouts",
                 str(tmp_path / "bad-rollouts"), "--run-dir", str(tmp_path / "learn-bad"),
                 "--steps", "4", *LEARNER]) == 2
    assert "no frames of cameras ['corner2']" in capsys.readouterr().err


def test_camera_frames_as_videos_from_collect_to_an_online_round(tmp_path):
    """--video keeps the frames as LeRobot video features (MP4, AV1): close to the PNG frames
    of the same demo, trainable, and the online round's rollouts keep them so too."""
    png, mp4 = tmp_path / "png", tmp_path / "mp4"
    for out, extra in ((png, []), (mp4, ["--video"])):
        assert main(["collect", "--task", "reach", "--out", str(out), "--num-episodes", "1",
                     "--max-steps", "150", "--cameras", "corner2", "--image-size", "16",
                     *extra]) == 0
    assert EpisodeStore.open(mp4).video_keys == ["corner2"]
    assert list(mp4.glob("videos/observation.images.corner2/chunk-000/file-000.mp4"))
    exact = open_stores([png], cameras=("corner2",)).images["corner2"].astype(int)
    coded = open_stores([mp4], cameras=("corner2",)).images["corner2"].astype(int)
    assert coded.shape == exact.shape and exact.std() > 10
    # AV1 in yuv420p is lossy (5.5 of 255 on average at 16x16, measured), and close
    assert np.abs(coded - exact).mean() < 8

    sft, online = tmp_path / "sft", tmp_path / "online"
    assert main(["train", "--datasets", str(mp4), "--run-dir", str(sft), "--steps", "2",
                 "--batch-size", "8", *TINY_CAMERA_POLICY]) == 0
    assert main(["online", "--sft-checkpoint", str(sft / "checkpoints/last"), "--run-dir",
                 str(online), "--method", "habc", "--rounds", "1", "--rollouts-per-round", "2",
                 "--steps-per-round", "2", *LEARNER, "--eval-trials", "1", "--workers", "1",
                 "--video"]) == 0
    rollouts = EpisodeStore.open(online / "rollouts")
    assert rollouts.video_keys == ["corner2"]
    frames = rollouts.read(["corner2"]).images["corner2"]
    assert frames.shape == (rollouts.read().num_frames, 16, 16, 3) and frames.std() > 10
