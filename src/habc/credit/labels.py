"""Intervention-aware credit assignment (SPEC §2) as pure functions over flat episode arrays.

Every frame gets a *kind* and three facts:

| kind | outcome label | efficiency target valid | actor weight before normalisation |
|---|---|---|---|
| DEMO | none | only with ``critic_use_demos`` | 1 |
| AUTONOMOUS (whole episode is policy) | y | y = 1 | HABC weight (failed: the failed rule) |
| PRE_INTERVENTION (policy, before the last human segment) | none | no | 0 |
| HUMAN | none, never | y = 1 | 1 (HABC weight with IR) |
| SUFFIX (policy, after the last human segment) | y | y = 1 | as AUTONOMOUS |
| BOUNDARY (rollout, near a logged takeover boundary) | none | no | 0 |

BOUNDARY frames exist only with a ``boundary_margin`` > 0 (beyond SPEC, which names noisy
intervention boundaries as a limit in §11): a logged takeover start or end may be off by a few
steps, so the frames within the margin of one are neither imitated as the operator's nor
outcome-labelled as the policy's.

``naive`` credit (the baselines' reading) labels every rollout frame, human ones included, with
the episode outcome y and treats all of them as outcome-weighted samples.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from habc.episodes.episode import Controller, EpisodeSource
from habc.episodes.windows import chunk_indices

NO_LABEL = -1
"""Value of ``outcome_label`` for frames that carry no outcome label."""


class FrameKind(enum.IntEnum):
    """Credit-assignment category of a frame."""

    DEMO = 0
    AUTONOMOUS = 1
    PRE_INTERVENTION = 2
    HUMAN = 3
    SUFFIX = 4
    BOUNDARY = 5


UNCREDITED_KINDS = (FrameKind.PRE_INTERVENTION, FrameKind.BOUNDARY)
"""Rollout frame kinds that carry no credit: not imitated, no outcome label, and outside the
weights' unit-mean normalisation and the advantages' running scale."""


@dataclass(frozen=True)
class CreditLabels:
    """Per-frame credit facts (N frames).

    Attributes:
        kind: (N,) int8 ``FrameKind``.
        outcome_label: (N,) int8 y in {0, 1}, or ``NO_LABEL``.
        succ_target_valid: (N,) bool, True where the efficiency head trains.
        episode_success: (N,) bool outcome y of the frame's episode.
        steps_to_end: (N,) int64 ``T - 1 - t``: 0 on the last step of the episode.
    """

    kind: npt.NDArray[np.int8]
    outcome_label: npt.NDArray[np.int8]
    succ_target_valid: npt.NDArray[np.bool_]
    episode_success: npt.NDArray[np.bool_]
    steps_to_end: npt.NDArray[np.int64]


def segment_ids(controller: npt.NDArray[np.integer], episode_starts: npt.NDArray[np.int64]) \
        -> npt.NDArray[np.int64]:
    """Index of each frame's segment (maximal run of one value within one episode).

    Args:
        controller: (N,) controller per frame (or any per-frame label, such as a stage).
        episode_starts: (E,) first frame of each episode.

    Returns:
        (N,) segment ids 0, 1, 2, ... increasing along the frames.
    """
    new = np.zeros(len(controller), dtype=bool)
    if len(controller):
        new[0] = True
        new[1:] = controller[1:] != controller[:-1]
        new[episode_starts] = True
    return np.cumsum(new) - 1


def last_human_index(controller: npt.NDArray[np.integer], episode_starts: npt.NDArray[np.int64],
                     episode_ends: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Global index of each episode's last human step, or -1 when it has none: (E,)."""
    human_at = np.where(controller == Controller.HUMAN, np.arange(len(controller)), -1)
    out = np.full(len(episode_starts), -1, dtype=np.int64)
    nonempty = episode_ends > episode_starts
    out[nonempty] = np.maximum.reduceat(human_at, episode_starts[nonempty])
    return out


def boundary_band(controller: npt.NDArray[np.integer], episode_starts: npt.NDArray[np.int64],
                  episode_ends: npt.NDArray[np.int64], margin: int) -> npt.NDArray[np.bool_]:
    """Frames within ``margin`` steps of a logged change of controller: (N,) bool.

    A change at frame b (its controller differs from frame b - 1's, in the same episode) marks
    frames ``b - margin .. b + margin - 1``, clipped to the episode: when the logged boundary is
    at most ``margin`` steps from the true one, every frame whose logged controller may be
    wrong lies in the band.

    Args:
        controller: (N,) ``Controller`` per frame.
        episode_starts: (E,) first frame of each episode.
        episode_ends: (E,) exclusive end of each episode.
        margin: half-width of the band in steps (0: no band).
    """
    n = len(controller)
    if margin < 0:
        raise ValueError("margin must be >= 0")
    change = np.zeros(n, dtype=bool)
    change[1:] = controller[1:] != controller[:-1]
    change[episode_starts[episode_ends > episode_starts]] = False
    at = np.flatnonzero(change)
    if margin == 0 or not len(at):
        return np.zeros(n, dtype=bool)
    episode = np.searchsorted(episode_starts, at, side="right") - 1
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, np.maximum(at - margin, episode_starts[episode]), 1)
    np.add.at(delta, np.minimum(at + margin, episode_ends[episode]), -1)
    return np.cumsum(delta)[:n] > 0


def failed_takeover_frames(controller: npt.NDArray[np.integer],
                           episode_starts: npt.NDArray[np.int64],
                           episode_ends: npt.NDArray[np.int64],
                           episode_success: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Human frames of a takeover that runs to the end of a failed episode: (N,) bool.

    The operator took over and did not finish the task (a scripted expert started from a state
    the policy left can fail). SPEC §2 imitates every human frame; ``LearnerConfig``'s
    ``imitate_failed_takeovers`` can leave these out.

    Args:
        controller: (N,) ``Controller`` per frame.
        episode_starts: (E,) first frame of each episode.
        episode_ends: (E,) exclusive end of each episode.
        episode_success: (E,) outcome y.
    """
    lengths = episode_ends - episode_starts
    frame_ep = np.repeat(np.arange(len(lengths)), lengths)
    segment = segment_ids(controller, episode_starts)
    last_segment = segment[np.maximum(episode_ends - 1, 0)][frame_ep]
    return (controller == Controller.HUMAN) & (segment == last_segment) \
        & ~episode_success[frame_ep]


def assign_credit(
    controller: npt.NDArray[np.integer],
    episode_starts: npt.NDArray[np.int64],
    episode_ends: npt.NDArray[np.int64],
    episode_source: npt.NDArray[np.str_],
    episode_success: npt.NDArray[np.bool_],
    *,
    naive: bool = False,
    critic_use_demos: bool = False,
    boundary_margin: int = 0,
) -> CreditLabels:
    """Label every frame per SPEC §2.

    Args:
        controller: (N,) ``Controller`` per frame.
        episode_starts: (E,) first frame of each episode.
        episode_ends: (E,) exclusive end of each episode.
        episode_source: (E,) ``EpisodeSource`` values.
        episode_success: (E,) outcome y.
        naive: label every rollout frame with y (baselines / ablation).
        critic_use_demos: let demo frames train the efficiency head (demos are successes).
        boundary_margin: rollout frames within this many steps of a logged takeover boundary
            become ``BOUNDARY`` (``boundary_band``); 0 is SPEC. Naive credit ignores it, as it
            ignores the controller.

    Returns:
        The per-frame ``CreditLabels``.
    """
    lengths = episode_ends - episode_starts
    frame_ep = np.repeat(np.arange(len(lengths)), lengths)
    idx = np.arange(len(controller))
    is_demo = (episode_source == str(EpisodeSource.DEMO))[frame_ep]
    y = episode_success[frame_ep]
    human = controller == Controller.HUMAN
    last_human = last_human_index(controller, episode_starts, episode_ends)[frame_ep]

    kind = np.full(len(controller), FrameKind.AUTONOMOUS, dtype=np.int8)
    kind[(last_human >= 0) & (idx > last_human)] = FrameKind.SUFFIX
    kind[(last_human >= 0) & (idx < last_human) & ~human] = FrameKind.PRE_INTERVENTION
    kind[human] = FrameKind.HUMAN
    kind[is_demo] = FrameKind.DEMO
    if boundary_margin and not naive:
        band = boundary_band(controller, episode_starts, episode_ends, boundary_margin)
        kind[band & ~is_demo] = FrameKind.BOUNDARY

    if naive:
        labelled = ~is_demo
        succ_valid = ~is_demo & y
    else:
        labelled = np.isin(kind, [FrameKind.AUTONOMOUS, FrameKind.SUFFIX])
        succ_valid = np.isin(kind, [FrameKind.AUTONOMOUS, FrameKind.SUFFIX, FrameKind.HUMAN]) & y
    if critic_use_demos:
        succ_valid = succ_valid | is_demo
    outcome = np.where(labelled, y.astype(np.int8), np.int8(NO_LABEL)).astype(np.int8)
    return CreditLabels(kind=kind, outcome_label=outcome, succ_target_valid=succ_valid,
                        episode_success=y, steps_to_end=episode_ends[frame_ep] - 1 - idx)


def kind_counts(kind: npt.NDArray[np.int8]) -> dict[str, int]:
    """Frames of each ``FrameKind`` in kind (N,): ``{"demo": n, ..., "boundary": n}``."""
    return {k.name.lower(): int(np.sum(kind == k)) for k in FrameKind}


def intervention_min_steps(horizon: int) -> int:
    """``m = ceil(H / 5)``: human steps a chunk needs to be an intervention window (SPEC §1)."""
    return math.ceil(horizon / 5)


def human_steps_in_chunk(anchors: npt.NDArray[np.int64], controller: npt.NDArray[np.integer],
                         episode_ends: npt.NDArray[np.int64],
                         frame_episode: npt.NDArray[np.int64], horizon: int) \
        -> npt.NDArray[np.int64]:
    """Number of real (non-padded) human steps in the chunk of each anchor: (B,)."""
    idx, valid = chunk_indices(anchors, episode_ends, frame_episode, horizon)
    return np.sum((controller[idx] == Controller.HUMAN) & valid, axis=1)


def intervention_windows(anchors: npt.NDArray[np.int64], controller: npt.NDArray[np.integer],
                         episode_ends: npt.NDArray[np.int64],
                         frame_episode: npt.NDArray[np.int64], horizon: int,
                         min_human: int | None = None) -> npt.NDArray[np.bool_]:
    """True for windows whose chunk holds at least ``m`` human steps (default ceil(H/5)): (B,)."""
    m = intervention_min_steps(horizon) if min_human is None else min_human
    return human_steps_in_chunk(anchors, controller, episode_ends, frame_episode, horizon) >= m
