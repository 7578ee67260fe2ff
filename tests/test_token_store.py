"""Tests for seq2seq_jax.data.text.token_store: records, writing, reading by index."""
import pickle

import numpy as np
import pytest

from seq2seq_jax.data.text import token_store


def _write(directory, examples, block=3):
  writer = token_store.SplitWriter(str(directory), "train")
  for start in range(0, len(examples), block):
    part = examples[start:start + block]
    writer.write([e[0] for e in part], [np.asarray(e[1], np.int32) for e in part],
                 [np.asarray(e[2], np.int32) for e in part],
                 [e[3] for e in part], [e[4] for e in part])
  return writer.close()


EXAMPLES = [(i + 1, list(range(4, 4 + i % 5)), [7] * (1 + i % 3),
             f"quelle {i} ×\u202f!", f"which {i}") for i in range(23)]


def test_a_record_decodes_to_what_was_encoded():
  blob = token_store.encode_record(12, np.array([5, 70000, 6], np.int32),
                                   np.array([], np.int32), "Grüße\ttab",
                                   "")
  example = token_store.decode_record(blob)
  assert example.line == 12
  np.testing.assert_array_equal(example.source_ids, [5, 70000, 6])
  assert example.source_ids.dtype == np.int32 and example.target_ids.size == 0
  assert (example.source_text, example.target_text) == ("Grüße\ttab", "")


def test_a_stored_split_reads_any_examples_in_the_asked_order(tmp_path):
  assert _write(tmp_path, EXAMPLES) == 23
  split = token_store.StoredSplit(str(tmp_path), "train")
  assert len(split) == 23
  np.testing.assert_array_equal(split.source_lengths,
                                [i % 5 for i in range(23)])
  np.testing.assert_array_equal(split.target_lengths,
                                [1 + i % 3 for i in range(23)])
  indices = [22, 0, 7, 7, 13]
  for index, example in zip(indices, split.examples(indices)):
    line, source, target, source_text, target_text = EXAMPLES[index]
    assert example.line == line
    np.testing.assert_array_equal(example.source_ids, source)
    np.testing.assert_array_equal(example.target_ids, target)
    assert (example.source_text, example.target_text) == (source_text,
                                                          target_text)
  sources, targets = split.token_ids([3, 4])
  np.testing.assert_array_equal(sources[1], EXAMPLES[4][1])
  np.testing.assert_array_equal(targets[0], EXAMPLES[3][2])
  memory = split.to_memory(chunk=5)
  assert memory.lines == [e[0] for e in EXAMPLES]
  assert memory.target_text == [e[4] for e in EXAMPLES]
  np.testing.assert_array_equal(memory.source_lengths, split.source_lengths)


def test_a_stored_split_pickles_without_its_open_reader(tmp_path):
  _write(tmp_path, EXAMPLES)
  split = token_store.StoredSplit(str(tmp_path), "train")
  split.examples([1])  # opens the reader
  copy = pickle.loads(pickle.dumps(split))
  assert copy.examples([5])[0].source_text == EXAMPLES[5][3]


def test_a_side_longer_than_the_lengths_file_holds_is_refused(tmp_path):
  writer = token_store.SplitWriter(str(tmp_path), "train")
  with pytest.raises(ValueError, match="at most 65,534"):
    writer.write([1], [np.zeros(70_000, np.int32)], [np.zeros(1, np.int32)],
                 ["a"], ["b"])


def test_a_manifest_of_another_format_is_not_a_store(tmp_path):
  assert token_store.read_manifest(str(tmp_path)) is None
  token_store.write_manifest(str(tmp_path), {"name": "x"})
  assert token_store.read_manifest(str(tmp_path))["name"] == "x"
  (tmp_path / token_store.MANIFEST_FILE).write_text('{"format_version": 0}')
  assert token_store.read_manifest(str(tmp_path)) is None
