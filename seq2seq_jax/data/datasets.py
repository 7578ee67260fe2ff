"""The dataset registry: `config.data.task` names a loader returning tokenized splits.

A loader returns a `Corpus`: the vocabularies and, per split, the token ids and
the raw text (kept for logging samples and, later, for BLEU on detokenized text).
"""
from seq2seq_jax.data import synthetic
from seq2seq_jax.data.text import translation
from seq2seq_jax.data import vocabulary
from seq2seq_jax.data.corpus import Corpus, read_all, tokenize


def _spec(data) -> synthetic.TaskSpec:
  return synthetic.TaskSpec(
      task=data.task, min_length=data.synthetic.min_length,
      max_length=data.synthetic.max_length,
      num_symbols=data.synthetic.num_symbols,
      num_train=data.synthetic.num_train,
      num_validation=data.synthetic.num_validation,
      num_test=data.synthetic.num_test, seed=data.synthetic.seed)


def load_synthetic(data, vocabularies=None) -> Corpus:
  """Builds the synthetic TFDS dataset (once) and tokenizes it by character."""
  from seq2seq_jax.data import synthetic_builder  # pylint: disable=g-import-not-at-top
  spec = _spec(data)
  sources = synthetic_builder.prepare(spec, data.tfds_data_dir)
  vocab = vocabulary.CharVocabulary(synthetic.alphabet(spec))
  source_vocab, target_vocab = vocabularies or (vocab, vocab)
  splits = {name: tokenize(read_all(src), source_vocab, target_vocab)
            for name, src in sources.items()}
  return Corpus(source_vocab=source_vocab, target_vocab=target_vocab,
                splits=splits,
                dataset=(f"synthetic_tasks/{synthetic_builder.builder_config(spec).name}"
                         f":{synthetic_builder.SyntheticTasks.VERSION}"))


LOADERS = {task: load_synthetic for task in synthetic.GENERATORS}
LOADERS.update({task: translation.load for task in translation.TEXT_TASKS})
TASKS = tuple(LOADERS)


def validate(data) -> None:
  """Checks data settings without building anything; ValueError names the option."""
  if data.task in synthetic.GENERATORS:
    synthetic.validate(_spec(data))
  elif data.task in LOADERS:
    translation.validate(data)


def load(data, vocabularies=None) -> Corpus:
  """The corpus named by data.task; `vocabularies` (source, target) skips building."""
  if data.task not in LOADERS:
    raise ValueError(f"config.data.task: unknown task {data.task!r}; valid: "
                     f"{', '.join(sorted(LOADERS))}")
  return LOADERS[data.task](data, vocabularies)
