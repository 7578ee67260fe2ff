"""The dataset registry: `config.data.task` names a loader returning tokenized splits.

A loader returns a `Corpus`: the vocabularies and, per split, the token ids and
the raw text (kept for logging samples and, later, for BLEU on detokenized text).
"""
import dataclasses
from typing import Dict, List

import numpy as np

from seq2seq_jax.data import synthetic
from seq2seq_jax.data import tokenizers
from seq2seq_jax.data import vocabulary

tokenizers.register()  # vocabulary files of every kind load by their "kind"


@dataclasses.dataclass
class Split:
  """One tokenized split. ids lists hold 1-D int32 arrays without BOS/EOS;
  `lines` are the examples' 1-based line numbers in their corpus file."""
  source_ids: List[np.ndarray]
  target_ids: List[np.ndarray]
  source_text: List[str]
  target_text: List[str]
  lines: List[int] = dataclasses.field(default_factory=list)

  def __len__(self):
    return len(self.source_ids)


@dataclasses.dataclass
class Corpus:
  source_vocab: object
  target_vocab: object
  splits: Dict[str, Split]  # 'train', 'validation', 'test'
  is_text: bool = False  # natural language: report BLEU and chrF
  dataset: str = ""  # the prepared dataset's identity (builder/config:version)


def _spec(data) -> synthetic.TaskSpec:
  return synthetic.TaskSpec(
      task=data.task, min_length=data.min_length, max_length=data.max_length,
      num_symbols=data.num_symbols, num_train=data.num_train,
      num_validation=data.num_validation, num_test=data.num_test,
      seed=data.generator_seed)


def _read_all(source, chunk: int = 8192):
  """Reads every record of a TFDS data source (batched reads are ~4x faster)."""
  records = []
  for start in range(0, len(source), chunk):
    records.extend(source.__getitems__(
        list(range(start, min(start + chunk, len(source))))))
  return records


def _as_text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def tokenize(records, source_vocab, target_vocab) -> Split:
  source_text = [_as_text(r["source"]) for r in records]
  target_text = [_as_text(r["target"]) for r in records]
  return Split(
      source_ids=[np.asarray(source_vocab.encode(t), np.int32) for t in source_text],
      target_ids=[np.asarray(target_vocab.encode(t), np.int32) for t in target_text],
      source_text=source_text, target_text=target_text,
      lines=[int(r.get("line", i + 1)) for i, r in enumerate(records)])


def load_synthetic(data, vocabularies=None) -> Corpus:
  """Builds the synthetic TFDS dataset (once) and tokenizes it by character."""
  from seq2seq_jax.data import synthetic_builder  # pylint: disable=g-import-not-at-top
  spec = _spec(data)
  sources = synthetic_builder.prepare(spec, data.tfds_data_dir)
  vocab = vocabulary.CharVocabulary(synthetic.alphabet(spec))
  source_vocab, target_vocab = vocabularies or (vocab, vocab)
  splits = {name: tokenize(_read_all(src), source_vocab, target_vocab)
            for name, src in sources.items()}
  return Corpus(source_vocab=source_vocab, target_vocab=target_vocab,
                splits=splits,
                dataset=(f"synthetic_tasks/{synthetic_builder.builder_config(spec).name}"
                         f":{synthetic_builder.SyntheticTasks.VERSION}"))


def load_text(data, vocabularies=None) -> Corpus:
  from seq2seq_jax.data import translation  # pylint: disable=g-import-not-at-top
  return translation.load(data, vocabularies)


LOADERS = {task: load_synthetic for task in synthetic.GENERATORS}
LOADERS.update({"tsv": load_text, "multi30k": load_text, "tfds": load_text})
TASKS = tuple(LOADERS)


def validate(data) -> None:
  """Checks data settings without building anything; ValueError names the option."""
  if data.task in synthetic.GENERATORS:
    synthetic.validate(_spec(data))
  elif data.task in LOADERS:
    from seq2seq_jax.data import translation  # pylint: disable=g-import-not-at-top
    translation.validate(data)


def load(data, vocabularies=None) -> Corpus:
  """The corpus named by data.task; `vocabularies` (source, target) skips building."""
  if data.task not in LOADERS:
    raise ValueError(f"config.data.task: unknown task {data.task!r}; valid: "
                     f"{', '.join(sorted(LOADERS))}")
  return LOADERS[data.task](data, vocabularies)
