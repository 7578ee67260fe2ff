"""Decodes a split of a trained run and prints BLEU/chrF (or exact match).

  python -m seq2seq_jax.evaluate --workdir=DIR [--split=test] [--checkpoint=best]

Prints the scores as JSON to stdout, then writes, in the order of the split's
corpus file (so line i is the translation of line i of e.g.
test_2016_flickr.de):
  DIR/hypotheses_<split>.txt    the best hypothesis per line (detokenized),
                                ready for `sacrebleu REF < FILE`
  DIR/translations_<split>.tsv  a header, then per sentence its line number
                                in the corpus file, source, reference, and
                                each of the --nbest hypotheses (with its
                                beam score when --beam_size > 1)
`--output=PATH` puts the hypotheses elsewhere and the TSV beside them. The
output directory's writability is checked before anything is decoded.
"""
import dataclasses
import json
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple

from absl import flags

from seq2seq_jax import cli
from seq2seq_jax.data import datasets
from seq2seq_jax.inference import text_metrics
from seq2seq_jax.inference import trained_run
from seq2seq_jax.training import workdir

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split to decode.")
flags.DEFINE_enum("checkpoint", "best", list(trained_run.CHECKPOINTS),
                  "Which checkpoint to restore.")
flags.DEFINE_string("output", None, "Hypotheses file (default "
                    "DIR/hypotheses_SPLIT.txt); the TSV is written beside it.")
flags.DEFINE_integer("batch_size", 64, "Sentences per decoding batch.")
flags.DEFINE_integer("beam_size", 1, "1 = greedy; more = beam search.")
flags.DEFINE_float("alpha", 0.6, "GNMT length penalty exponent (beam search).")
flags.DEFINE_integer("nbest", 1, "Hypotheses per sentence in the TSV; the "
                     "scores use the best.")
flags.DEFINE_string("data_path", None, "Read the data from here instead of "
                    "the run's config.data.path (moved data; the prepared "
                    "dataset must still match the run's dataset.json).")
flags.mark_flag_as_required("workdir")

Scored = List[Tuple[str, Optional[float]]]


def output_paths(workdir: str, split: str,
                 output: Optional[str]) -> Tuple[str, str]:
  """(hypotheses file, translations TSV); fails early if not writable."""
  hypotheses = output or os.path.join(workdir, f"hypotheses_{split}.txt")
  directory = os.path.dirname(os.path.abspath(hypotheses))
  probe = os.path.join(directory, f".write_test_{os.getpid()}")
  try:  # a real write: permission bits say nothing to root or a read-only mount
    with open(probe, "w", encoding="utf-8"):
      pass
    os.remove(probe)
  except OSError as e:
    raise cli.UserError(
        f"cannot write {hypotheses} ({e.strerror or e}); point --output at a "
        "writable place") from None
  return hypotheses, os.path.join(directory, f"translations_{split}.tsv")


def write_outputs(hypotheses_path: str, tsv_path: str, lines: Sequence[int],
                  sources: Sequence[str], references: Sequence[str],
                  nbest: Sequence[Scored]) -> None:
  """The hypotheses file and the translations TSV (see module docstring)."""
  with open(hypotheses_path, "w", encoding="utf-8") as f:
    f.writelines(_one_line(scored[0][0]) + "\n" for scored in nbest)
  count = max(len(scored) for scored in nbest) if nbest else 1
  with_scores = any(score is not None for scored in nbest for _, score in scored)
  header = ["line", "source", "reference"]
  for k in range(1, count + 1):
    header += [f"hypothesis_{k}"] + ([f"score_{k}"] if with_scores else [])
  with open(tsv_path, "w", encoding="utf-8") as f:
    f.write("\t".join(header) + "\n")
    for line, source, reference, scored in zip(lines, sources, references,
                                               nbest):
      row = [str(line), source, reference]
      for text, score in scored:
        row += [text] + ([f"{score:.6f}"] if with_scores else [])
      f.write("\t".join(_one_line(field) for field in row) + "\n")


def _one_line(text: str) -> str:
  """A field on one line with no tab: plain TSV needs no quoting then."""
  return " ".join(text.replace("\t", " ").splitlines())


def main(argv):
  del argv
  run = trained_run.load_run(FLAGS.workdir, FLAGS.checkpoint)
  hypotheses_path, tsv_path = output_paths(FLAGS.workdir, FLAGS.split,
                                           FLAGS.output)
  data = run.settings.data
  if FLAGS.data_path:
    data = dataclasses.replace(data, path=FLAGS.data_path)
  try:
    corpus = datasets.load(data, vocabularies=(run.source_vocab,
                                               run.target_vocab))
  except ValueError as e:
    raise cli.UserError(f"{e} (the run's data; pass --data_path=... where it "
                        "has moved)") from None
  dataset_error = workdir.dataset_mismatch(FLAGS.workdir, corpus.dataset)
  if dataset_error:
    raise cli.UserError(dataset_error)
  split = corpus.splits[FLAGS.split]
  start = time.perf_counter()
  try:
    nbest = trained_run.translate_scored(
        run, split.source_text, batch_size=FLAGS.batch_size,
        beam_size=FLAGS.beam_size, alpha=FLAGS.alpha, nbest=FLAGS.nbest)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  seconds = time.perf_counter() - start
  hypotheses = [scored[0][0] for scored in nbest]
  if corpus.is_text:
    scores = text_metrics.corpus_scores(hypotheses, split.target_text)
  else:
    exact = sum(h == r for h, r in zip(hypotheses, split.target_text))
    scores = {"greedy_sequence_accuracy": exact / max(len(split), 1)}
  scores.update({"split": FLAGS.split, "checkpoint_step": run.step,
                 "beam_size": FLAGS.beam_size, "sentences": len(hypotheses),
                 "sentences_per_s": len(hypotheses) / seconds,
                 "hypotheses": hypotheses_path, "translations": tsv_path})
  print(json.dumps(scores, indent=1), flush=True)  # before any write can fail
  try:
    write_outputs(hypotheses_path, tsv_path, split.lines, split.source_text,
                  split.target_text, nbest)
  except OSError as e:
    print(f"error: could not write the outputs ({e}); the scores are above. "
          "Point --output at a writable place.", file=sys.stderr)
    sys.exit(cli.USAGE_ERROR_CODE)


if __name__ == "__main__":
  cli.run(main)
