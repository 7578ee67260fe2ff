"""Multi-host start-up: one process per host, joined by `jax.distributed`.

Every host runs the same command. The processes find each other through a
coordinator given by flags, or by JAX's own detection of the cluster (Cloud
TPU pod slices, SLURM, Open MPI) with `--distributed=auto`. Afterwards
`jax.devices()` lists every host's devices, so the training mesh
(partitioning.py) spans them all; each process feeds its own rows of every
batch, the first process writes the workdir's logs, and Orbax writes the
checkpoints from all of them. Must run before anything touches a JAX device.
"""
import jax

MODES = ("off", "auto", "explicit")


def initialize(mode: str, coordinator_address: str = "",
               num_processes: int = 0, process_id: int = -1) -> None:
  """Joins this process to the run (`mode` is one of MODES).

  Args:
    mode: "off" (single process), "auto" (JAX detects the cluster), or
      "explicit" (the three other arguments say where and who).
    coordinator_address: "host:port" of process 0.
    num_processes: how many processes take part.
    process_id: this process's index, 0 .. num_processes - 1.
  """
  if mode not in MODES:
    raise ValueError(f"--distributed={mode!r}: valid values are {MODES}")
  if mode == "off":
    return
  # CPU devices of different processes talk over gloo (TCP); GPU and TPU use
  # their own collectives, which this option does not touch.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if mode == "auto":
    jax.distributed.initialize()
    return
  if not coordinator_address or num_processes < 1 or not (
      0 <= process_id < num_processes):
    raise ValueError(
        "--distributed=explicit needs --coordinator_address=HOST:PORT, "
        "--num_processes=N >= 1 and 0 <= --process_id < N; got "
        f"{coordinator_address!r}, {num_processes}, {process_id}")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
