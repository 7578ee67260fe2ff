"""Averages the parameters of a run's last N (or named) checkpoints.

  python -m seq2seq_jax.average --workdir=DIR [--last=5]
  python -m seq2seq_jax.average --workdir=DIR --steps=8000,9000,10000
  python -m seq2seq_jax.evaluate --workdir=DIR --checkpoint=average

Writes DIR/average/ (replacing an earlier one); the checkpoints averaged are
those of DIR/checkpoints/, so set train.keep_checkpoints to at least N.
"""
from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.inference import averaging

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_integer("last", 5, "Average the newest N checkpoints.")
flags.DEFINE_list("steps", [], "Average these steps instead of --last.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {argv[1:]}")
  try:
    steps = [int(step) for step in FLAGS.steps]
  except ValueError:
    raise cli.UserError(f"--steps: expected integers, got {FLAGS.steps}"
                        ) from None
  try:
    chosen = averaging.average(FLAGS.workdir, last=FLAGS.last, steps=steps)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  print(f"averaged steps {chosen} into {FLAGS.workdir}/average; decode it "
        f"with --checkpoint=average")


if __name__ == "__main__":
  cli.run(main)
