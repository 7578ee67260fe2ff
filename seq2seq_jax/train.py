"""Trains a seq2seq model: the command line over training/loop.py.

  python -m seq2seq_jax.train --config=configs/default.py --workdir=/tmp/run \
      --config.model.cell=gru --config.data.reverse_source=True

Multi-host (the same command on every host, the workdir on a shared disk):
  ... --distributed=explicit --coordinator_address=host0:1234 \
      --num_processes=2 --process_id=0   # 1 on the other host
  ... --distributed=auto   # Cloud TPU pod slices, SLURM, Open MPI

On CPU, a model whose step works on more than 64 MB trains faster with
`SEQ2SEQ_JAX_HOST_MEMORY=keep` in the environment (host_memory.py says why).
JAX's persistent compilation cache is on by default, in
~/.cache/seq2seq_jax/compilation (`$XDG_CACHE_HOME` moves it): a restart, or
another run with the same model and batch shapes, loads the compiled steps
instead of compiling them again (the same executables, so the same numbers).
`JAX_COMPILATION_CACHE_DIR=DIR` uses DIR; set to nothing, it turns the
cache off.
"""
import os

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from seq2seq_jax import cli
from seq2seq_jax import host_memory
from seq2seq_jax.training import distributed
from seq2seq_jax.training import loop

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and config.")
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                lock_config=True)
flags.DEFINE_enum("distributed", "off", distributed.MODES,
                  "Multi-host: off, auto (JAX detects the cluster) or explicit "
                  "(the three flags below).")
flags.DEFINE_string("coordinator_address", "",
                    "host:port of process 0 (--distributed=explicit).")
flags.DEFINE_integer("num_processes", 0, "Processes in the run (explicit).")
flags.DEFINE_integer("process_id", -1, "This process's index (explicit).")
flags.mark_flags_as_required(["config", "workdir"])


CACHE_ENV_VAR = "JAX_COMPILATION_CACHE_DIR"


def default_cache_dir() -> str:
  cache_home = (os.environ.get("XDG_CACHE_HOME")
                or os.path.join(os.path.expanduser("~"), ".cache"))
  return os.path.join(cache_home, "seq2seq_jax", "compilation")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    # Before JAX starts its threads (host_memory's docstring says why).
    kept = host_memory.configure()
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  try:
    distributed.initialize(FLAGS.distributed, FLAGS.coordinator_address,
                           FLAGS.num_processes, FLAGS.process_id)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.info("process %d of %d; JAX devices: %s", jax.process_index(),
               jax.process_count(), jax.devices())
  logging.info("host memory: %s", "freed buffers kept for reuse" if kept else
               f"glibc defaults ({host_memory.ENV_VAR}="
               f"{host_memory.requested_mode()})")
  if CACHE_ENV_VAR not in os.environ:
    jax.config.update("jax_compilation_cache_dir", default_cache_dir())
  logging.info("compilation cache: %s",
               jax.config.jax_compilation_cache_dir or
               f"off ({CACHE_ENV_VAR} is empty; set it to a folder to use one)")
  loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main, extra_errors=(loop.NonFiniteError,))
