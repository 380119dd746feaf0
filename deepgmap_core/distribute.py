"""Training on several devices with tf.distribute: MirroredStrategy over the GPUs of one machine,
MultiWorkerMirroredStrategy over several machines (each process reads its role from TF_CONFIG).

Training stays a loop over batches read ahead in threads: each global batch is cut into
consecutive equal shards, one per replica. Each replica computes Keras's loss of the model on
its shard (divided by the number of replicas) and its gradients; the optimizer sums them over
the replicas, so a step is a step on the whole batch, computed in parallel. Predictions are
cut the same way and put back in order.
"""

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np

from .errors import InputError
from .fileio import output_group

# Keras and TensorFlow are imported where used: the command line imports this module for its
# choices before it sets up TensorFlow's start-up.
DISTRIBUTE_MODES = ("mirrored", "multi-worker")


def distribution_strategy(mode, backend):
    """The tf.distribute strategy of `mode` ('mirrored' or 'multi-worker'), None for no mode.
    Create it before any other TensorFlow work: multi-worker training requires it."""
    if not mode:
        return None
    if mode not in DISTRIBUTE_MODES:
        raise InputError(f"--distribute must be one of {', '.join(DISTRIBUTE_MODES)}, got {mode!r}")
    if backend != "tensorflow":
        raise InputError(f"--distribute uses tf.distribute and needs the TensorFlow backend, not {backend} "
                         f"(unset KERAS_BACKEND, or train without --distribute)")
    import tensorflow as tf

    if mode == "mirrored":
        return tf.distribute.MirroredStrategy()
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", ""))
        workers = cluster["cluster"]["worker"]
        cluster["task"]["type"], cluster["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise InputError("--distribute multi-worker needs TF_CONFIG, e.g. '{\"cluster\": {\"worker\": "
                         "[\"node1:12345\", \"node2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
                         "(the same cluster on every node, each its own index)") from None
    if not workers:
        raise InputError("TF_CONFIG names no worker")
    return tf.distribute.MultiWorkerMirroredStrategy()


def replica_count(strategy):
    return strategy.num_replicas_in_sync if strategy is not None else 1


def strategy_scope(strategy):
    """Where models are built (or loaded) so that their variables live on every replica."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def replica_inputs(strategy, array):
    """`array` as the strategy's per-replica values: consecutive shards along the first axis,
    replica i taking the i-th (the same global batch on every worker). Unchanged without one."""
    if strategy is None:
        return array
    shards = np.array_split(array, strategy.num_replicas_in_sync)
    return strategy.experimental_distribute_values_from_function(
        lambda context: shards[context.replica_id_in_sync_group])


def predict_on_replicas(strategy, model, x):
    """The predictions of `model` for the batch x, split over the replicas of `strategy` (x is
    padded with zero windows to a multiple of the replicas: no replica may get an empty shard)."""
    import keras

    if strategy is not None:
        padding = -len(x) % strategy.num_replicas_in_sync
        padded = np.concatenate([x, np.zeros((padding, *x.shape[1:]), dtype=x.dtype)])
        return keras.ops.convert_to_numpy(model.predict_on_batch(replica_inputs(strategy, padded)))[:len(x)]
    return keras.ops.convert_to_numpy(model.predict_on_batch(x))


def train_step(strategy, model, x, y):
    """A function (x, y) -> loss that trains `model` on one global batch of the shapes of x, y.

    Without a strategy it is Keras's train_on_batch. With one, the step is written out (forward
    pass and Keras's loss on each replica's shard, gradients summed over the replicas by the
    optimizer): Keras 3's own train_on_batch cannot reduce its logs under
    MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388), nor build its state from
    per-replica values. That state (optimizer slots, compiled loss) is built here from x, y."""
    import keras

    if strategy is None:
        return lambda x, y: float(keras.ops.convert_to_numpy(model.train_on_batch(x, y)))
    import tensorflow as tf

    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        model.compute_loss(x, y, model(x, training=False), training=False)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True), training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def global_step(x, y):
        return strategy.reduce("SUM", strategy.run(replica_step, args=(x, y)), axis=None)

    return lambda x, y: float(global_step(replica_inputs(strategy, x), replica_inputs(strategy, y)))


def is_chief(strategy):
    """Whether this process writes the outputs: always, except the workers of a multi-worker
    cluster other than the chief (or worker 0 when the cluster names no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


@contextlib.contextmanager
def worker_output(strategy, path):
    """`path` for the chief; for another worker of a cluster, a path in a private temporary
    folder, removed afterwards (every worker saves the model, only the chief's is kept)."""
    if is_chief(strategy):
        yield path
        return
    folder = tempfile.mkdtemp(prefix="deepgmap-worker-")
    try:
        with output_group():  # its files land in the private folder before the folder goes
            yield os.path.join(folder, os.path.basename(path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
