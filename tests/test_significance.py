"""The study reports' paired bootstrap is sacrebleu's, with seeds pooled."""
import numpy as np
import pytest
import sacrebleu
from sacrebleu import metrics as sacrebleu_metrics
from sacrebleu import significance as sacrebleu_significance

from experiments import significance

WORDS = ("a man rides a red bike down the street while two dogs run after "
         "him and a woman in a blue coat watches from the door").split()


def _corpus(keep, drop_seed, seed=0):
  """120 references, and hypotheses that keep each word with probability
  `keep` (which words: drop_seed)."""
  rng = np.random.default_rng(seed)
  references = [" ".join(rng.choice(WORDS, size=rng.integers(4, 12)))
                for _ in range(120)]
  drop = np.random.default_rng(drop_seed)
  hypotheses = [" ".join(w for w in r.split() if drop.random() < keep)
                for r in references]
  return references, hypotheses


def test_one_seed_a_side_is_sacrebleus_paired_bootstrap():
  references, baseline = _corpus(0.6, 0)
  _, system = _corpus(0.7, 1)
  comparison, = significance.compare(
      "bleu", {"base": [(baseline, references)],
               "new": [(system, references)]}, "base")
  # sacrebleu's own paired bootstrap on the same systems.
  test = sacrebleu_significance.PairedTest(
      [("base", baseline), ("new", system)], {"BLEU": sacrebleu_metrics.BLEU()},
      [references], test_type="bs", n_samples=significance.N_SAMPLES)
  _, scores = test()
  want = scores["BLEU"][1]
  assert comparison.p_value == pytest.approx(want.p_value, abs=1e-12)
  assert comparison.difference == pytest.approx(
      sacrebleu.corpus_bleu(system, [references]).score
      - sacrebleu.corpus_bleu(baseline, [references]).score, abs=1e-9)
  assert comparison.low < comparison.difference < comparison.high
  assert comparison.difference > 0 and comparison.p_value < 0.05


def test_seeds_are_pooled_into_one_corpus_score():
  references, first = _corpus(0.5, 2)
  _, second = _corpus(0.8, 3)
  statistics = sum(significance.sentence_statistics("bleu", h, references)
                   for h in (first, second))
  pooled = significance.corpus_score("bleu", statistics)
  concatenated = sacrebleu.corpus_bleu(first + second,
                                       [references + references]).score
  assert pooled == pytest.approx(concatenated, abs=1e-9)


def test_a_small_difference_is_not_significant_and_others_are_left_out():
  references, baseline = _corpus(0.7, 4)
  _, other_seed = _corpus(0.7, 5)
  comparisons = significance.compare(
      "chrf", {"base": [(baseline, references)],
               "same_quality": [(other_seed, references)],
               "other_test_set": [(baseline, references[::-1])],
               "unfinished": []}, "base")
  assert [c.variant for c in comparisons] == ["same_quality"]
  assert comparisons[0].p_value > 0.05
  assert comparisons[0].low < 0 < comparisons[0].high
  # Not BLEU or chrF (e.g. exact match): no test at all.
  assert significance.compare("sequence_accuracy",
                              {"base": [(baseline, references)]}, "base") == []
