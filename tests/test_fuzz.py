"""Random bytes through the data reader and the translate input path."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data import tokenizers

LINES = st.lists(st.binary(max_size=60) | st.text(max_size=40).map(
    lambda s: s.encode("utf-8")), max_size=30)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_tsv_reader_counts_every_line_or_raises_data_error(tmp_path, lines):
  lines = [line.replace(b"\n", b" ") for line in lines]  # one record per line
  path = tmp_path / "fuzz.tsv"
  path.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
  try:
    pairs, report = text_pairs.read_tsv_pairs(str(path))
  except text_pairs.DataError as e:
    assert "no usable pairs" in str(e)  # the only documented failure here
    return
  # Nothing silently dropped: kept + rejected accounts for every line (a
  # leading BOM or trailing CR is part of a line, not a line of its own).
  assert report.kept + sum(report.rejected.values()) == len(lines)
  assert len(pairs) == report.kept
  assert all(a.strip() and b.strip() for a, b in pairs)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_word_vocabulary_never_crashes_and_maps_unknowns_to_unk(text):
  vocab = tokenizers.WordVocabulary.build(["le chat est noir .", "un chien"])
  ids = vocab.encode(text)
  assert all(0 <= i < vocab.size for i in ids)
  assert isinstance(vocab.decode(ids), str)


class _FakeRun:
  """Just what trained_run.encode_sources reads."""

  def __init__(self, reverse):
    self.source_vocab = tokenizers.WordVocabulary.build(["a b c d e"])
    self.source_length = 6

    class _Data:
      reverse_source = reverse
      preset = "none"

    class _Settings:
      data = _Data()

    self.settings = _Settings()


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=5),
       reverse=st.booleans())
def test_translate_inputs_are_truncated_never_rejected(texts, reverse):
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  run = _FakeRun(reverse)
  rows = trained_run.encode_sources(run, texts)
  assert rows.shape == (len(texts), 6)
  for row, text in zip(rows, texts):
    ids = run.source_vocab.encode(text)[:6]  # truncated to the model's limit
    real = len(ids)
    assert np.all(row[real:] == 0)  # padding stays at the end
    np.testing.assert_array_equal(row[:real], ids[::-1] if reverse else ids)
