"""Where training runs: this process's default device, all local devices (`mirrored`), or
several machines (`multi_worker`, configured by the standard TF_CONFIG environment variable).

Batch rule: the config's batch_size is the batch of ONE replica; a step consumes
batch_size × num_replicas_in_sync images. The learning rate is scaled by the same factor
(`linear`, the usual rule for synchronous data parallelism) or kept as configured (`none`).
With one replica both rules give the config's own training.

Every worker runs the same program on the same deterministic data, so all of them make the
same decisions; only the chief (task type `chief`, or worker 0 when the cluster has none)
keeps what it writes.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf

from train.configs import LR_SCALINGS, STRATEGIES



@dataclass(frozen=True)
class Placement:
    strategy: tf.distribute.Strategy
    name: str
    is_chief: bool
    num_workers: int

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def read_tf_config(text: str | None) -> tuple[int, bool]:
    """(number of workers, whether this task is the chief) from TF_CONFIG's JSON; a missing or
    malformed TF_CONFIG is a ValueError that says what is expected."""
    example = ('e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise ValueError(f"TF_CONFIG: not set — --strategy multi_worker needs it in every worker's environment, "
                         f"{example}")
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, index = task["type"], int(task["index"])
        members = {kind: list(cluster.get(kind, [])) for kind in ("chief", "worker")}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"TF_CONFIG: not valid JSON with 'cluster' and 'task' — {example}") from None
    if len(members["chief"]) > 1 or not members["chief"] + members["worker"]:
        raise ValueError(f"TF_CONFIG: the cluster needs at most one chief and at least one worker or chief address — {example}")
    if task_type not in members or not 0 <= index < len(members[task_type]):
        raise ValueError(f"TF_CONFIG: task {task_type!r} {index} is not in the cluster {json.dumps(cluster)}")
    is_chief = task_type == "chief" or (not members["chief"] and index == 0)
    return len(members["chief"]) + len(members["worker"]), is_chief


def make_placement(name: str) -> Placement:
    """The strategy `name`. Must run before any other TensorFlow work: multi-worker collectives
    can only be configured at program start."""
    if name == "default":
        return Placement(tf.distribute.get_strategy(), name, True, 1)
    if name == "mirrored":
        return Placement(tf.distribute.MirroredStrategy(), name, True, 1)
    if name == "multi_worker":
        num_workers, is_chief = read_tf_config(os.environ.get("TF_CONFIG"))
        return Placement(tf.distribute.MultiWorkerMirroredStrategy(), name, is_chief, num_workers)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def scaled_learning_rate(learning_rate: float, replicas: int, rule: str) -> float:
    if rule not in LR_SCALINGS:
        raise ValueError(f"lr_scaling must be one of {LR_SCALINGS}, got {rule!r}")
    return learning_rate * replicas if rule == "linear" else learning_rate


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Every worker builds the whole dataset and keeps its part of each global batch. Sharding
    by files is impossible here (the data are in-memory arrays), and saying so explicitly
    keeps tf.data from trying it and warning."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def same_on_every_worker(placement: Placement, value: int) -> bool:
    """Whether every replica holds the same `value` (one all-reduce of value and value²: equal
    sums of both mean zero variance). Lets workers agree before acting on a local decision."""
    if placement.replicas == 1:
        return True
    local = tf.constant([value, value * value], tf.float64)

    @tf.function
    def total():
        strategy = placement.strategy
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)), axis=None)
    return bool(np.array_equal(total().numpy(), placement.replicas * local.numpy()))


def weights_sha256(weights: list[np.ndarray]) -> str:
    """A fingerprint of model weights, equal on every worker of a synchronous run."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()
