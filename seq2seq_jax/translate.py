"""Translates sentences with a trained run.

  python -m seq2seq_jax.translate --workdir=DIR "je suis fatigue ."
  python -m seq2seq_jax.translate --workdir=DIR < sentences.txt > out.txt
  python -m seq2seq_jax.translate --workdir=DIR --num_samples=5 \
      --temperature=0.8 --top_k=20 --seed=1 "je suis fatigue ."
  python -m seq2seq_jax.translate --workdir=A --workdir=B --beam_size=5 < in.txt

Prints one line per input: its translation, or with --nbest or
--num_samples its hypotheses tab-separated. Several --workdir flags decode
with the ensemble of those runs (decode_flags.py).

Arguments are translated one per line; without arguments, stdin is read one
sentence per line. An empty line gives an empty line; an over-long one is
truncated to the model's limit with a warning; bytes that are not UTF-8 are
replaced (U+FFFD) and read as unknown words, never a crash.
"""
import io
import sys

from absl import flags

from seq2seq_jax import cli
from seq2seq_jax import decode_flags
from seq2seq_jax.inference import attention_plot

FLAGS = flags.FLAGS
flags.DEFINE_string("plot_attention", None,
                    "Save the attention heatmap of the (single) input sentence "
                    "to this PNG file (attention models only).")


def _stdin_lines():
  stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8",
                            errors="replace")
  return [line.rstrip("\r\n") for line in stream]


def main(argv):
  sentences = argv[1:] if len(argv) > 1 else _stdin_lines()
  if FLAGS.plot_attention and len(sentences) != 1:
    raise cli.UserError("--plot_attention takes exactly one sentence")
  if FLAGS.plot_attention and len(FLAGS.workdir) > 1:
    raise cli.UserError("--plot_attention draws one model's attention; give "
                        "one --workdir")
  decode_flags.check()
  run = decode_flags.load()
  texts = [s.strip() for s in sentences]
  for hypotheses in decode_flags.decode(run, texts):
    print("\t".join(text for text, _ in hypotheses))
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
