"""Exports a trained run for serving: StableHLO decode loops, parameters,
vocabularies and preprocessing in one folder (inference/exporting.py).

  python -m seq2seq_jax.export --workdir=DIR --output=MODEL [--beam_size=5]
  python -m seq2seq_jax.serving MODEL "ein hund läuft ."

The folder translates with `seq2seq_jax.serving` alone (JAX, NumPy and the
standard library; no Flax, TensorFlow Datasets or training code), exactly as
`python -m seq2seq_jax.translate --workdir=DIR` does.
"""
from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.inference import exporting

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_string("output", None, "The folder to write (new or empty).")
flags.DEFINE_string("checkpoint", "best", "Which checkpoint to export: "
                    "best, latest, average, or a step directory's path.")
flags.DEFINE_integer("beam_size", 5, "Beam size of the exported beam search "
                     "(greedy search is always exported).")
flags.DEFINE_list("platforms", [], "jax.export platforms (e.g. cpu,cuda); "
                  "default: this machine's.")
flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {argv[1:]}")
  try:
    info = exporting.export_run(
        FLAGS.workdir, FLAGS.output, checkpoint=FLAGS.checkpoint,
        beam_size=FLAGS.beam_size, platforms=FLAGS.platforms or None)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  print(f"exported step {info['step']} of {FLAGS.workdir} to {FLAGS.output} "
        f"(greedy and beam {info['beam_size']}, {', '.join(info['platforms'])}"
        f"); translate with: python -m seq2seq_jax.serving {FLAGS.output} "
        "\"...\"")


if __name__ == "__main__":
  cli.run(main)
