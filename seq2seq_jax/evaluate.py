"""Decodes a split of a trained run and prints BLEU/chrF (or exact match).

  python -m seq2seq_jax.evaluate --workdir=DIR [--split=test] [--checkpoint=best]

Writes the hypotheses, one per line, to DIR/hypotheses_<split>.txt (or
--output) and the scores as JSON to stdout.
"""
import json
import os
import sys
import time

from absl import app
from absl import flags

from seq2seq_jax import inference
from seq2seq_jax import reporting
from seq2seq_jax import text_metrics
from seq2seq_jax import workdir as workdir_lib
from seq2seq_jax.data import datasets

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split to decode.")
flags.DEFINE_enum("checkpoint", "best", list(inference.CHECKPOINTS),
                  "Which checkpoint to restore.")
flags.DEFINE_string("output", None, "Hypotheses file (default DIR/hypotheses_SPLIT.txt).")
flags.DEFINE_integer("batch_size", 64, "Sentences per decoding batch.")
flags.DEFINE_integer("beam_size", 1, "1 = greedy; more = beam search.")
flags.DEFINE_float("alpha", 0.6, "GNMT length penalty exponent (beam search).")
flags.DEFINE_integer("nbest", 1, "Hypotheses written per sentence (tab-separated); "
                     "scores use the best.")
flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  reporting.quiet_library_logs()
  try:
    run = inference.load_run(FLAGS.workdir, FLAGS.checkpoint)
    corpus = datasets.load(run.settings.data,
                           vocabularies=(run.source_vocab, run.target_vocab))
  except (workdir_lib.WorkdirError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  split = corpus.splits[FLAGS.split]
  start = time.perf_counter()
  nbest = inference.translate(run, split.source_text,
                              batch_size=FLAGS.batch_size,
                              beam_size=FLAGS.beam_size, alpha=FLAGS.alpha,
                              nbest=FLAGS.nbest)
  seconds = time.perf_counter() - start
  hypotheses = [h[0] for h in nbest]
  if corpus.is_text:
    scores = text_metrics.corpus_scores(hypotheses, split.target_text)
  else:
    exact = sum(h == r for h, r in zip(hypotheses, split.target_text))
    scores = {"greedy_sequence_accuracy": exact / max(len(split), 1)}
  scores.update({"split": FLAGS.split, "checkpoint_step": run.step,
                 "beam_size": FLAGS.beam_size, "sentences": len(hypotheses),
                 "sentences_per_s": len(hypotheses) / seconds})
  output = FLAGS.output or os.path.join(FLAGS.workdir,
                                        f"hypotheses_{FLAGS.split}.txt")
  with open(output, "w", encoding="utf-8") as f:
    f.writelines("\t".join(h) + "\n" for h in nbest)
  print(json.dumps(scores, indent=1))


if __name__ == "__main__":
  app.run(main)
