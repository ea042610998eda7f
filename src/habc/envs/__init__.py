"""Environments: a gymnasium task layer with a registry of tasks, experts and seeds."""

from habc.envs.registry import (
    EVAL_SEED_BASE,
    TaskSpec,
    eval_seeds,
    get_task,
    list_tasks,
    make_env,
    train_seeds,
)

__all__ = ["EVAL_SEED_BASE", "TaskSpec", "eval_seeds", "get_task", "list_tasks", "make_env",
           "train_seeds"]
