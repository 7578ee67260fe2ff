"""Translates sentences with a trained run.

  python -m seq2seq_jax.translate --workdir=DIR "je suis fatigue ."
  python -m seq2seq_jax.translate --workdir=DIR < sentences.txt > out.txt
  python -m seq2seq_jax.translate --workdir=DIR --num_samples=5 \
      --temperature=0.8 --top_k=20 --seed=1 "je suis fatigue ."

Arguments are translated one per line; without arguments, stdin is read one
sentence per line. An empty line gives an empty line; an over-long one is
truncated to the model's limit with a warning; bytes that are not UTF-8 are
replaced (U+FFFD) and read as unknown words, never a crash.
"""
import io
import sys

from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.inference import attention_plot
from seq2seq_jax.inference import trained_run

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_enum("checkpoint", "best", list(trained_run.CHECKPOINTS),
                  "Which checkpoint to restore.")
flags.DEFINE_integer("batch_size", 64, "Sentences per decoding batch.")
flags.DEFINE_integer("beam_size", 1, "1 = greedy; more = beam search.")
flags.DEFINE_float("alpha", 0.6, "GNMT length penalty exponent (beam search).")
flags.DEFINE_integer("nbest", 1, "Hypotheses printed per input, tab-separated.")
flags.DEFINE_integer("num_samples", 0,
                     "> 0: print this many sampled translations per input "
                     "(tab-separated) instead of greedy or beam search.")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature (> 0).")
flags.DEFINE_integer("top_k", 0, "Sample among the k most likely tokens at "
                     "each step; 0 = the whole vocabulary.")
flags.DEFINE_integer("seed", 0, "Sampling seed: the same seed, the same "
                     "samples.")
flags.DEFINE_string("plot_attention", None,
                    "Save the attention heatmap of the (single) input sentence "
                    "to this PNG file (attention models only).")
flags.mark_flag_as_required("workdir")


def _stdin_lines():
  stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8",
                            errors="replace")
  return [line.rstrip("\r\n") for line in stream]


def main(argv):
  sentences = argv[1:] if len(argv) > 1 else _stdin_lines()
  if FLAGS.plot_attention and len(sentences) != 1:
    raise cli.UserError("--plot_attention takes exactly one sentence")
  if FLAGS.num_samples and (FLAGS.beam_size > 1 or FLAGS.nbest > 1):
    raise cli.UserError("--num_samples samples; it cannot be combined with "
                        "--beam_size or --nbest")
  run = trained_run.load_run(FLAGS.workdir, FLAGS.checkpoint)
  texts = [s.strip() for s in sentences]
  try:
    if FLAGS.num_samples:
      translations = trained_run.sample_translations(
          run, texts, num_samples=FLAGS.num_samples,
          temperature=FLAGS.temperature, top_k=FLAGS.top_k, seed=FLAGS.seed,
          batch_size=FLAGS.batch_size)
    else:
      translations = trained_run.translate(
          run, texts, batch_size=FLAGS.batch_size, beam_size=FLAGS.beam_size,
          alpha=FLAGS.alpha, nbest=FLAGS.nbest)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  for hypotheses in translations:
    print("\t".join(hypotheses))
  if FLAGS.plot_attention:
    try:
      source, target, weights = attention_plot.attention_matrix(
          run, sentences[0].strip())
    except ValueError as e:
      raise cli.UserError(str(e)) from None
    attention_plot.save_heatmap(source, target, weights, FLAGS.plot_attention)
    print(f"attention heatmap written to {FLAGS.plot_attention}",
          file=sys.stderr)


if __name__ == "__main__":
  cli.run(main)
