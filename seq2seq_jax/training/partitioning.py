"""Data parallelism over every device of every host with JAX's sharding (no pmap).

The train state is replicated and each batch is split along its first axis
over a one-axis mesh ('data') spanning all devices (all hosts' devices after
`distributed.initialize`); `jax.jit` (GSPMD) partitions the step and
all-reduces the gradients. Metrics are sums, so they are exact whatever the
number of devices: the same global batch gives the same update on 1 or N
devices (up to float summation order).

Each process feeds only its own rows of a global batch (`process_shard`),
which `global_batch` assembles into one array sharded over the mesh.
"""
from typing import Dict

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seq2seq_jax.data import pipeline

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def check_batch_size(batch_size: int, option: str) -> None:
  """A global batch must split evenly over the devices."""
  devices = jax.device_count()
  if batch_size % devices:
    raise ValueError(f"config.{option}={batch_size} does not split over "
                     f"{devices} devices; use a multiple of {devices}")


def is_primary() -> bool:
  """True in the one process that writes logs, metrics and config files."""
  return jax.process_index() == 0


def process_shard() -> pipeline.Shard:
  """(this process's index, the process count), for `pipeline` batches."""
  return jax.process_index(), jax.process_count()


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def global_batch(local_batch: Dict[str, np.ndarray],
                 mesh: Mesh) -> Dict[str, jax.Array]:
  """One array per key, sharded along the batch axis, from this process's
  rows (every process holds the same number of rows)."""
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  count = jax.process_count()
  return {key: jax.make_array_from_process_local_data(
      sharding, value, (len(value) * count,) + value.shape[1:])
          for key, value in local_batch.items()}


def shard_batch(batch: Dict[str, np.ndarray], mesh: Mesh) -> Dict[str, jax.Array]:
  """A global numpy batch (the same on every process) -> sharded arrays."""
  rows = len(next(iter(batch.values())))
  local = pipeline.shard_rows(rows, process_shard())
  return global_batch({k: v[local] for k, v in batch.items()}, mesh)


def to_host(tree):
  """Fetches (possibly multi-host) arrays whole onto every host, as numpy."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)


def agree(flag: bool) -> bool:
  """The first process's `flag`, on every process (so all take one branch)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (e.g. a SIGTERM on one host)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))
