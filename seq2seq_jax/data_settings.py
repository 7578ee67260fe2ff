"""The `data.*` keys: which dataset, how it is read, filtered, tokenized and
batched. Declared like every key (see settings.py, which gathers them)."""
import dataclasses

from seq2seq_jax.options import (at_least_zero, between, one_of, option,
                                 positive, section)

BUCKETINGS = ("fitted", "quantile", "multiple")


def _tasks():
  from seq2seq_jax.data import datasets  # pylint: disable=g-import-not-at-top
  return datasets.TASKS


@dataclasses.dataclass(frozen=True)
class SyntheticSettings:
  """The generated tasks (data.task = addition, copy, reverse or sort)."""
  min_length: int = option(
      1, "digits per operand (addition) or symbols per sequence, fewest",
      formerly="data.min_length")
  max_length: int = option(3, "the same, most", formerly="data.max_length")
  num_symbols: int = option(10, "alphabet size of copy / reverse / sort",
                            formerly="data.num_symbols")
  num_train: int = option(200_000, "training examples (splits are disjoint)",
                          formerly="data.num_train")
  num_validation: int = option(1_000, "validation examples",
                               formerly="data.num_validation")
  num_test: int = option(1_000, "test examples", formerly="data.num_test")
  seed: int = option(
      0, "the dataset's own seed, fixed across run seeds so they share one "
      "dataset", formerly="data.generator_seed")


@dataclasses.dataclass(frozen=True)
class VocabSettings:
  """Vocabularies of parallel text, built from the training split only."""
  kind: str = option("word", "`word` or `sentencepiece`",
                     formerly="data.vocab_kind")
  size: int = option(0, "most ids, 4 specials included; 0 = every word "
                     "(`word` only)", formerly="data.vocab_size")
  min_count: int = option(1, "`word`: fewest occurrences to get an id",
                          formerly="data.vocab_min_count")
  sentencepiece_model: str = option("unigram", "`unigram` or `bpe`",
                                    formerly="data.sentencepiece_model")
  shared: bool = option(False, "one vocabulary for both sides",
                        formerly="data.shared_vocab")
  sample_sentences: int = option(
      1_000_000, "`sentencepiece`: trained on at most this many training "
      "sentences (a fixed sample), as `spm_train --input_sentence_size`",
      check=positive, absent_means=1_000_000)


@dataclasses.dataclass(frozen=True)
class DataSettings:
  task: str = option(
      "addition", "synthetic `addition`, `copy`, `reverse`, `sort`; parallel "
      "text `tsv` (a tab-separated pairs file), `multi30k` (a directory), "
      "`tfds` (a TFDS name)", check=one_of(_tasks))
  reverse_source: bool = option(False,
                                "Sutskever et al. 2014 source reversal")
  tfds_data_dir: str = option(
      "", "TFDS data dir (`\"\"` = `~/tensorflow_datasets`)",
      may_change_on_resume=True)
  path: str = option(
      "", "`tsv`: the `english<TAB>other` file; `multi30k`: its directory. "
      "Recorded absolute; may change on resume (the data itself is checked "
      "through `dataset.json`; `evaluate --data_path` reads moved data)",
      may_change_on_resume=True)
  train_prefix: str = option(
      "", "`parallel`: the training files without their language suffix "
      "(`PREFIX.de`, `PREFIX.en`); recorded absolute", may_change_on_resume=True,
      absent_means="")
  validation_prefix: str = option(
      "", "`parallel`: the validation files' prefix, e.g. `.../newstest2013`",
      may_change_on_resume=True, absent_means="")
  test_prefix: str = option(
      "", "`parallel`: the test files' prefix, e.g. `.../newstest2014`",
      may_change_on_resume=True, absent_means="")
  max_held_out: int = option(
      3_000, "`tsv`: most pairs held out for validation, and for test (of "
      "the 5% each of the split)", check=at_least_zero("0 = no limit"),
      absent_means=0)
  tfds_name: str = option(
      "", "`tfds`: a prepared TFDS translation dataset, e.g. "
      "`wmt14_translate/de-en`")
  source_language: str = option(
      "", "translation direction, e.g. `fr`; `tsv`: one side must be `en`")
  target_language: str = option("", "e.g. `en`")
  preset: str = option(
      "none", "`tutorial`: the PyTorch tutorial's normalisation and filters "
      "(`tsv`)")
  min_words: int = option(
      1, "training pairs: fewest words per side (0 = no limit)")
  max_words: int = option(
      100, "training pairs: most words per side, 0 = no limit (one outlier "
      "would pad every batch to its length)")
  strict: bool = option(
      False, "a malformed data line is an error instead of a counted reject")
  max_rejected_fraction: float = option(
      0.05, "stop when more of a file's lines than this are malformed "
      "(naming the main reason)", check=between(0, 1),
      may_change_on_resume=True, absent_means=1.0)
  bucketing: str = option(
      "fitted", "`fitted`: batches of similar source and target lengths, "
      "padded to the first of `batch_shapes` (source, target) shapes fitted "
      "to the training lengths that holds them; `quantile`: each side padded "
      "up to a bucket boundary from that side's length quantiles "
      "(`length_buckets`); `multiple`: sorted within chunks of 50 batches, "
      "padded to a multiple of `pad_multiple` (0 = unsorted, padded to the "
      "longest)", check=one_of(BUCKETINGS), absent_means="multiple")
  batch_shapes: int = option(
      14, "`fitted`: most (source, target) padded shapes, hence compiled "
      "train steps (more: less padding, more compiles)", check=positive,
      absent_means=14)
  length_buckets: int = option(
      6, "`quantile`: buckets per side between the quantiles of the training "
      "lengths (more: less padding, more compiled shapes)", check=positive,
      absent_means=6)
  pad_multiple: int = option(
      0, "`multiple` bucketing, and `train.batch_tokens` buckets: pad to a "
      "multiple (0 = pad to the longest)",
      check=at_least_zero("0 = pad to the longest"))
  loader_workers: int = option(
      0, "Grain worker processes that read and pad training batches (0 = a "
      "prefetch thread in the trainer)", check=at_least_zero(),
      may_change_on_resume=True, absent_means=0)
  synthetic: SyntheticSettings = section(SyntheticSettings)
  vocab: VocabSettings = section(VocabSettings)
