"""Translates with an exported model: only JAX, NumPy and the standard library.

  python -m seq2seq_jax.export --workdir=DIR --output=MODEL    # writes MODEL/
  python -m seq2seq_jax.serving MODEL "ein hund läuft ."       # greedy
  python -m seq2seq_jax.serving MODEL --beam_size=5 < in.txt   # beam search

or from Python:

  from seq2seq_jax.serving import Translator
  Translator("MODEL").translate(["ein hund läuft ."], beam_size=5)

An exported model (seq2seq_jax/inference/exporting.py writes it) is a folder:
  artifact.json       format version, the preprocessing (normalization,
                      source reversal, the longest source), the decode
                      length, the beam size of beam.jax, where it came from
  greedy.jax          encoder + greedy decode loop      } jax.export,
  beam.jax            encoder + beam search decode loop } StableHLO, any
                                                          batch size
  params.npz          the parameters, in the order the functions take them
  vocab_source.json, vocab_target.json   the run's vocabularies

This module imports neither Flax nor TensorFlow Datasets nor the training
code: the model is the serialized computation, and the text rules are the
project's vocabulary modules (standard library only; `sentencepiece` only
for a SentencePiece vocabulary).
"""
import argparse
import io
import json
import logging
import os
import sys
from typing import List, Sequence

from jax import export as jax_export
import jax.numpy as jnp
import numpy as np

from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data import tokenizers

FORMAT_VERSION = 1
ARTIFACT_FILE = "artifact.json"
GREEDY_FILE = "greedy.jax"
BEAM_FILE = "beam.jax"
PARAMS_FILE = "params.npz"
VOCABULARY_FILES = ("vocab_source.json", "vocab_target.json")


class ArtifactError(ValueError):
  """An exported model that cannot be read, or a request it cannot serve."""


def encode_rows(vocab, texts: Sequence[str], *, source_length: int,
                normalization: str, reverse: bool) -> np.ndarray:
  """Token ids [len(texts), source_length], as a run's training inputs were.

  The text is normalized (text_pairs.NORMALIZERS) and encoded; an over-long
  input is truncated to the model's limit with a warning naming the line, an
  empty one gives an all-padding row, and a reversed run reads it reversed.
  """
  normalize = text_pairs.NORMALIZERS[normalization]
  rows = np.zeros((len(texts), source_length), np.int32)
  for index, text in enumerate(texts):
    ids = vocab.encode(normalize(text))
    if len(ids) > source_length:
      logging.warning("input %d has %d tokens; truncated to the model's limit "
                      "of %d", index + 1, len(ids), source_length)
      ids = ids[:source_length]
    if reverse:
      ids = ids[::-1]
    rows[index, :len(ids)] = ids
  return rows


def _read_json(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ArtifactError(f"cannot read {path}: {e}") from None


class Translator:
  """An exported model, loaded once, translating batches of text."""

  def __init__(self, directory: str):
    self.directory = directory
    self.info = _read_json(os.path.join(directory, ARTIFACT_FILE))
    if self.info.get("format_version") != FORMAT_VERSION:
      raise ArtifactError(
          f"{os.path.join(directory, ARTIFACT_FILE)}: format version "
          f"{self.info.get('format_version')!r}; this loader reads "
          f"{FORMAT_VERSION}")
    self.source_vocab, self.target_vocab = (
        tokenizers.from_json(_read_json(os.path.join(directory, name)))
        for name in VOCABULARY_FILES)
    with np.load(os.path.join(directory, PARAMS_FILE)) as arrays:
      self._params = [jnp.asarray(arrays[f"p{i}"])
                      for i in range(len(arrays.files))]
    self._functions = {}

  def _function(self, name: str):
    if name not in self._functions:
      with open(os.path.join(self.directory, name), "rb") as f:
        self._functions[name] = jax_export.deserialize(bytearray(f.read()))
    return self._functions[name]

  def translate(self, texts: Sequence[str], *, beam_size: int = 1,
                alpha: float = 0.6, nbest: int = 1,
                batch_size: int = 64) -> List[List[str]]:
    """Per input, its `nbest` translations, best first (an empty input gives
    ''); greedy for beam_size 1, else the exported beam search.

    Rows are decoded in zero-padded batches of `batch_size`, as
    `seq2seq_jax.translate` does, so the two give the same translations.
    """
    exported_beam = self.info["beam_size"]
    if beam_size not in (1, exported_beam):
      raise ArtifactError(f"this model was exported with beam size "
                          f"{exported_beam}: use --beam_size=1 (greedy) or "
                          f"{exported_beam}, or export it again with "
                          f"--beam_size={beam_size}")
    if not 1 <= nbest <= beam_size:
      raise ArtifactError(f"need 1 <= nbest <= beam_size, got nbest={nbest}, "
                          f"beam_size={beam_size}")
    rows = encode_rows(self.source_vocab, texts,
                       source_length=self.info["source_length"],
                       normalization=self.info["normalization"],
                       reverse=self.info["reverse_source"])
    outputs = []
    for start in range(0, len(rows), batch_size):
      chunk = rows[start:start + batch_size]
      padded = np.zeros((batch_size, rows.shape[1]), np.int32)
      padded[:len(chunk)] = chunk
      if beam_size == 1:
        tokens = np.asarray(self._function(GREEDY_FILE).call(
            self._params, jnp.asarray(padded)))[:, None]
      else:
        tokens, _ = self._function(BEAM_FILE).call(
            self._params, jnp.asarray(padded), jnp.float32(alpha))
        tokens = np.asarray(tokens)
      for hypotheses, source in zip(tokens, chunk):
        outputs.append([self.target_vocab.decode(row) if source.any() else ""
                        for row in hypotheses[:nbest]])
    return outputs


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m seq2seq_jax.serving",
      description="Translates with an exported model (see the module "
      "docstring); sentences from the arguments, else stdin line by line.")
  parser.add_argument("model", help="the folder seq2seq_jax.export wrote")
  parser.add_argument("sentences", nargs="*")
  parser.add_argument("--beam_size", type=int, default=1)
  parser.add_argument("--alpha", type=float, default=0.6)
  parser.add_argument("--nbest", type=int, default=1)
  parser.add_argument("--batch_size", type=int, default=64)
  args = parser.parse_intermixed_args(argv)
  sentences = args.sentences or [
      line.rstrip("\r\n") for line in
      io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")]
  try:
    translator = Translator(args.model)
    translations = translator.translate(
        [s.strip() for s in sentences], beam_size=args.beam_size,
        alpha=args.alpha, nbest=args.nbest, batch_size=args.batch_size)
  except (ArtifactError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for hypotheses in translations:
    print("\t".join(hypotheses))
  return 0


if __name__ == "__main__":
  sys.exit(main())
