"""Decodes a test set with a trained run (or an ensemble) and prints its scores.

  python -m seq2seq_jax.evaluate --workdir=DIR [--split=test] [--checkpoint=best]
  python -m seq2seq_jax.evaluate --workdir=DIR --source_file=test.de \
      --reference_file=test.en [--reference_file=test2.en]
  python -m seq2seq_jax.evaluate --workdir=A --workdir=B --workdir=C   # ensemble

The test set is a split of the run's own data, or any pair of plain-text
files (one sentence a line, UTF-8): the source file goes through the run's
own preprocessing (preset normalization, tokenization, reversal), and so do
the references where the run's preset normalized its training targets
(`data.preset=tutorial`), so the score compares with the run's split scores.
The decoding flags (beam search, sampling, ensembles) are decode_flags.py's.

Prints the scores as JSON to stdout (BLEU, BLEU lowercased and chrF for text;
exact match for synthetic tasks; nothing to score without references), then
writes, in the order of the test file (line i translates line i):
  DIR/hypotheses_<name>.txt     the best hypothesis (or the first sample) per
                                line, detokenized: `sacrebleu REF < FILE`
  DIR/translations_<name>.tsv   a header, then per sentence its line number,
                                source, reference(s) and every hypothesis
                                (with its beam score under --beam_size > 1)
<name> is the split, or the source file's name; an ensemble's adds
"_ensemble<N>". `--output=PATH` puts the hypotheses elsewhere and the TSV
beside them; that place is checked to be writable before decoding.
"""
import dataclasses
import json
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple

from absl import flags

from seq2seq_jax import cli
from seq2seq_jax import decode_flags
from seq2seq_jax.data import datasets
from seq2seq_jax.data import synthetic
from seq2seq_jax.inference import text_metrics
from seq2seq_jax.inference import trained_run
from seq2seq_jax.training import workdir

FLAGS = flags.FLAGS
flags.DEFINE_enum("split", "test", ["train", "validation", "test"],
                  "Split of the run's data to decode.")
flags.DEFINE_string("source_file", None, "Decode this plain-text file (one "
                    "sentence a line) instead of a split of the run's data.")
flags.DEFINE_multi_string("reference_file", None, "With --source_file: its "
                          "reference translations, line by line; repeat for "
                          "several references.")
flags.DEFINE_string("output", None, "Hypotheses file (default "
                    "DIR/hypotheses_<name>.txt); the TSV is written beside it.")
flags.DEFINE_string("data_path", None, "Read the data from here instead of "
                    "the run's config.data.path (moved data; the prepared "
                    "dataset must still match the run's dataset.json).")


@dataclasses.dataclass
class TestSet:
  """What is decoded and what it is scored against."""
  name: str
  lines: List[int]             # 1-based line numbers in the source file
  sources: List[str]
  references: List[List[str]]  # reference streams, each line by line
  is_text: bool


def output_paths(directory: str, name: str,
                 output: Optional[str]) -> Tuple[str, str]:
  """(hypotheses file, translations TSV); fails early if not writable."""
  hypotheses = output or os.path.join(directory, f"hypotheses_{name}.txt")
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
  return hypotheses, os.path.join(directory, f"translations_{name}.tsv")


def read_lines(path: str, flag: str) -> List[str]:
  """The lines of a UTF-8 text file, without their line ends; a missing
  file or a line that is not UTF-8 is a one-line error naming both."""
  try:
    with open(path, "rb") as f:
      raw = f.read().splitlines()
  except OSError as e:
    raise cli.UserError(f"--{flag}={path}: cannot read it "
                        f"({e.strerror or e})") from None
  lines = []
  for number, line in enumerate(raw, 1):
    try:
      lines.append(line.decode("utf-8"))
    except UnicodeDecodeError as e:
      raise cli.UserError(f"--{flag}={path}: line {number} is not UTF-8 "
                          f"({e.reason} at byte {e.start})") from None
  return lines


def file_test_set(run, source_file: str,
                  reference_files: Sequence[str]) -> TestSet:
  """A TestSet from plain-text files; references must match line for line."""
  sources = read_lines(source_file, "source_file")
  if not sources:
    raise cli.UserError(f"--source_file={source_file} has no lines")
  references = []
  for path in reference_files:
    lines = read_lines(path, "reference_file")
    if len(lines) != len(sources):
      raise cli.UserError(
          f"--reference_file={path} has {len(lines)} lines, --source_file="
          f"{source_file} has {len(sources)}: they must pair line by line")
    references.append([trained_run.normalize(run.settings, line)
                       for line in lines])
  name = os.path.basename(source_file)
  return TestSet(name=name[:-len(".txt")] if name.endswith(".txt") else name,
                 lines=list(range(1, len(sources) + 1)), sources=sources,
                 references=references,
                 is_text=run.settings.data.task not in synthetic.GENERATORS)


def split_test_set(run, split_name: str, data_path: Optional[str]) -> TestSet:
  """A split of the run's own data (of the first member's, for an ensemble)."""
  data = run.settings.data
  if data_path:
    data = dataclasses.replace(data, path=data_path)
  try:
    corpus = datasets.load(data, vocabularies=(run.source_vocab,
                                               run.target_vocab))
  except ValueError as e:
    raise cli.UserError(f"{e} (the run's data; pass --data_path=... where it "
                        "has moved)") from None
  dataset_error = workdir.dataset_mismatch(FLAGS.workdir[0], corpus.dataset)
  if dataset_error:
    raise cli.UserError(dataset_error)
  split = corpus.splits[split_name].to_memory()
  return TestSet(name=split_name, lines=list(split.lines),
                 sources=list(split.source_text),
                 references=[list(split.target_text)], is_text=corpus.is_text)


def scores(test: TestSet, hypotheses: List[str]) -> dict:
  """BLEU, BLEU lowercased and chrF (text), or the fraction of hypotheses
  equal to a reference (synthetic tasks); of the best hypothesis or first
  sample per line."""
  if not test.references:
    return {}
  if test.is_text:
    return text_metrics.corpus_scores(hypotheses, *test.references)
  exact = sum(any(h == r[i] for r in test.references)
              for i, h in enumerate(hypotheses))
  return {"sequence_accuracy": exact / max(len(hypotheses), 1)}


def write_outputs(hypotheses_path: str, tsv_path: str, test: TestSet,
                  nbest: Sequence[decode_flags.Scored]) -> None:
  """The hypotheses file and the translations TSV (see module docstring)."""
  with open(hypotheses_path, "w", encoding="utf-8") as f:
    f.writelines(_one_line(scored[0][0]) + "\n" for scored in nbest)
  count = max(len(scored) for scored in nbest) if nbest else 1
  with_scores = any(score is not None for scored in nbest for _, score in scored)
  header = ["line", "source"]
  header += (["reference"] if len(test.references) == 1 else
             [f"reference_{k}" for k in range(1, len(test.references) + 1)])
  for k in range(1, count + 1):
    header += [f"hypothesis_{k}"] + ([f"score_{k}"] if with_scores else [])
  with open(tsv_path, "w", encoding="utf-8") as f:
    f.write("\t".join(header) + "\n")
    for index, (line, source, scored) in enumerate(zip(test.lines,
                                                       test.sources, nbest)):
      row = [str(line), source] + [stream[index] for stream in test.references]
      for text, score in scored:
        row += [text] + ([f"{score:.6f}"] if with_scores else [])
      f.write("\t".join(_one_line(field) for field in row) + "\n")


def _one_line(text: str) -> str:
  """A field on one line with no tab: plain TSV needs no quoting then."""
  return " ".join(text.replace("\t", " ").splitlines())


def _check_flags() -> None:
  decode_flags.check()
  if FLAGS.source_file is None:
    if FLAGS.reference_file:
      raise cli.UserError("--reference_file needs --source_file")
  elif FLAGS["split"].present or FLAGS.data_path:
    raise cli.UserError("--source_file decodes a file: it cannot be combined "
                        "with --split or --data_path")


def main(argv):
  del argv
  _check_flags()
  run = decode_flags.load()
  if FLAGS.source_file is not None:
    test = file_test_set(run, FLAGS.source_file, FLAGS.reference_file or ())
  else:
    test = split_test_set(run, FLAGS.split, FLAGS.data_path)
  members = len(FLAGS.workdir)
  name = test.name + (f"_ensemble{members}" if members > 1 else "")
  hypotheses_path, tsv_path = output_paths(FLAGS.workdir[0], name,
                                           FLAGS.output)
  start = time.perf_counter()
  nbest = decode_flags.decode(run, test.sources)
  seconds = time.perf_counter() - start
  hypotheses = [scored[0][0] for scored in nbest]
  results = scores(test, hypotheses)
  if FLAGS.num_samples > 1 and test.references and test.is_text:
    results["bleu_of_each_sample"] = [
        text_metrics.corpus_scores([row[j][0] for row in nbest],
                                   *test.references)["bleu"]
        for j in range(FLAGS.num_samples)]
  results.update({
      "test_set": test.name, "workdirs": list(FLAGS.workdir),
      "checkpoint_step": run.step, "beam_size": FLAGS.beam_size,
      "num_samples": FLAGS.num_samples, "sentences": len(hypotheses),
      "references": len(test.references),
      "sentences_per_s": len(hypotheses) / seconds,
      "hypotheses": hypotheses_path, "translations": tsv_path})
  print(json.dumps(results, indent=1), flush=True)  # before any write can fail
  try:
    write_outputs(hypotheses_path, tsv_path, test, nbest)
  except OSError as e:
    print(f"error: could not write the outputs ({e}); the scores are above. "
          "Point --output at a writable place.", file=sys.stderr)
    sys.exit(cli.USAGE_ERROR_CODE)


if __name__ == "__main__":
  cli.run(main)
