"""The flags `evaluate` and `translate` share: which runs to load and how to
decode (greedy, beam search or sampling), declared once for both commands.

  --workdir=DIR [--workdir=DIR2 ...]   several: an ensemble (the members'
                                       log-probabilities combined each step)
"""
from typing import List, Optional, Sequence, Tuple

from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.decoding import ensemble
from seq2seq_jax.inference import trained_run

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "workdir", None, "A trained run's workdir; repeat it to decode with an "
    "ensemble of runs trained with the same vocabularies.")
flags.DEFINE_string("checkpoint", "best", "Which checkpoint to restore: "
                    "best, latest or average (of every workdir), or the path "
                    "of one checkpoint step directory (DIR/checkpoints/3000).")
flags.DEFINE_enum("ensemble_combination", "mean_logprob",
                  list(ensemble.COMBINATIONS),
                  "How an ensemble's per-step distributions combine: the mean "
                  "of the log-probabilities (product of experts) or of the "
                  "probabilities (mixture).")
flags.DEFINE_integer("batch_size", 64, "Sentences per decoding batch.")
flags.DEFINE_integer("beam_size", 1, "1 = greedy; more = beam search.")
flags.DEFINE_float("alpha", 0.6, "GNMT length penalty exponent (beam search).")
flags.DEFINE_integer("nbest", 1, "Hypotheses kept per input (beam search).")
flags.DEFINE_integer("num_samples", 0,
                     "> 0: this many sampled translations per input instead "
                     "of greedy or beam search.")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature (> 0).")
flags.DEFINE_integer("top_k", 0, "Sample among the k most likely tokens at "
                     "each step; 0 = the whole vocabulary.")
flags.DEFINE_integer("seed", 0, "Sampling seed: the same seed, the same "
                     "samples.")
flags.mark_flag_as_required("workdir")

Scored = List[Tuple[str, Optional[float]]]


def check() -> None:
  """Refuses flag combinations that mean nothing, before anything loads."""
  if FLAGS.checkpoint not in trained_run.CHECKPOINTS and len(FLAGS.workdir) > 1:
    raise cli.UserError(f"--checkpoint={FLAGS.checkpoint} names one "
                        "checkpoint; with several --workdir use one of "
                        f"{', '.join(trained_run.CHECKPOINTS)}")
  if FLAGS.num_samples and (FLAGS.beam_size > 1 or FLAGS.nbest > 1):
    raise cli.UserError("--num_samples samples; it cannot be combined with "
                        "--beam_size or --nbest")


def load():
  """The run of --workdir, or the ensemble of several."""
  return trained_run.load(FLAGS.workdir, FLAGS.checkpoint,
                          FLAGS.ensemble_combination)


def decode(run, texts: Sequence[str]) -> List[Scored]:
  """Per input, its hypotheses with beam scores (None for greedy and
  samples): the --nbest best of a beam, the greedy one, or --num_samples
  samples, as the flags ask."""
  try:
    if FLAGS.num_samples:
      samples = trained_run.sample_translations(
          run, texts, num_samples=FLAGS.num_samples,
          temperature=FLAGS.temperature, top_k=FLAGS.top_k, seed=FLAGS.seed,
          batch_size=FLAGS.batch_size)
      return [[(text, None) for text in row] for row in samples]
    return trained_run.translate_scored(
        run, texts, batch_size=FLAGS.batch_size, beam_size=FLAGS.beam_size,
        alpha=FLAGS.alpha, nbest=FLAGS.nbest)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
