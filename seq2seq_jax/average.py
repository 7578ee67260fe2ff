"""Averages the parameters of a run's last N (or named) checkpoints.

  python -m seq2seq_jax.average --workdir=DIR [--last=5]
  python -m seq2seq_jax.average --workdir=DIR --steps=8000,9000,10000
  python -m seq2seq_jax.average --workdir=DIR \
      --checkpoints=DIR/checkpoints/9000,OTHER_SEED/checkpoints/9000
  python -m seq2seq_jax.evaluate --workdir=DIR --checkpoint=average

Writes DIR/average/ (replacing an earlier one). --last and --steps average
checkpoints of DIR/checkpoints/ (set train.keep_checkpoints to at least N);
--checkpoints averages step directories by path, also of other runs of the
same model (a checkpoint of another model is refused, naming it).
"""
from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.inference import averaging

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_integer("last", 5, "Average the newest N checkpoints.")
flags.DEFINE_list("steps", [], "Average these steps instead of --last.")
flags.DEFINE_list("checkpoints", [], "Average these checkpoint step "
                  "directories (of this or other runs of the same model).")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.checkpoints and FLAGS.steps:
    raise cli.UserError("--checkpoints names the checkpoints itself; it "
                        "cannot be combined with --steps")
  try:
    steps = [int(step) for step in FLAGS.steps]
  except ValueError:
    raise cli.UserError(f"--steps: expected integers, got {FLAGS.steps}"
                        ) from None
  try:
    chosen = averaging.average(FLAGS.workdir, last=FLAGS.last, steps=steps,
                               paths=FLAGS.checkpoints)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  print(f"averaged {len(chosen)} checkpoints ({', '.join(chosen)}) into "
        f"{FLAGS.workdir}/average; decode it with --checkpoint=average")


if __name__ == "__main__":
  cli.run(main)
