"""BLEU and chrF through sacrebleu."""
import pytest

from seq2seq_jax.inference import text_metrics


def test_identical_hypotheses_score_100():
  refs = ["the cat sat on the mat .", "a dog runs in the park ."]
  scores = text_metrics.corpus_scores(refs, refs)
  assert scores["bleu"] == pytest.approx(100.0)
  assert scores["bleu_lowercase"] == pytest.approx(100.0)
  assert scores["chrf"] == pytest.approx(100.0)


def test_case_only_differences_count_in_bleu_but_not_bleu_lowercase():
  refs = ["The Cat sat on the mat today ."]
  hyps = ["the cat sat on the mat today ."]
  scores = text_metrics.corpus_scores(hyps, refs)
  assert scores["bleu"] < 100.0
  assert scores["bleu_lowercase"] == pytest.approx(100.0)


def test_unrelated_hypotheses_score_near_zero_and_lengths_must_match():
  scores = text_metrics.corpus_scores(["xyz qqq"], ["the cat sat on the mat"])
  assert scores["bleu"] < 1.0
  with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
    text_metrics.corpus_scores(["a", "b"], ["a"])
