"""Data parallelism over every local device with JAX's sharding (no pmap).

The train state is replicated and each batch is split along its first axis
over a one-axis mesh ('data'); `jax.jit` (GSPMD) partitions the step and
all-reduces the gradients. Metrics are sums, so they are exact whatever the
number of devices: the same global batch gives the same update on 1 or N
devices (up to float summation order).
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def check_batch_size(batch_size: int, option: str) -> None:
  """A global batch must split evenly over the devices."""
  devices = jax.device_count()
  if batch_size % devices:
    raise ValueError(f"config.{option}={batch_size} does not split over "
                     f"{devices} devices; use a multiple of {devices}")


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch, mesh: Mesh):
  """Puts numpy arrays on the devices, split along the batch axis."""
  return jax.device_put(batch, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
