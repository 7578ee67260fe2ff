"""Is a variant's test BLEU really different from the baseline's? Paired
bootstrap resampling of the test sentences, as sacrebleu does it.

For each variant against the study's baseline (its first variant), on the
headline metric (BLEU or chrF, sacrebleu's defaults): the difference of the
corpus scores, a 95% confidence interval of that difference, and the p-value
of sacrebleu's paired bootstrap test (`sacrebleu --paired-bs`: 1,000
resamples, seed 12345; the p-value is the share of resamples whose absolute
difference, centred on the resamples' mean, exceeds the observed one).

Seeds are pooled: a variant's score is the corpus score of its finished
seeds' test hypotheses taken together (for each test sentence, the sums of
the seeds' sufficient statistics), and the resampling draws test sentences,
each carrying all its seeds. So the interval says how much the difference
would move on another test set of the same kind; the spread over seeds is the
± sd of the main table. With one seed a side this is exactly sacrebleu's
paired bootstrap (tests/test_significance.py checks the p-value against
`sacrebleu.significance.PairedTest`).

Each run's hypotheses and references are the files a finished run writes
(test_hypotheses.txt, test_references.txt); a run without them, or whose
references differ from the baseline's, leaves the comparison out.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from sacrebleu import metrics as sacrebleu_metrics
from sacrebleu import significance as sacrebleu_significance

from seq2seq_jax.training import workdir as workdir_lib

N_SAMPLES = 1000  # sacrebleu's default for the paired bootstrap
SEED = 12345  # sacrebleu's default SACREBLEU_SEED
METRICS = {"bleu": sacrebleu_metrics.BLEU, "chrf": sacrebleu_metrics.CHRF}


@dataclasses.dataclass(frozen=True)
class Comparison:
  """A variant against the baseline on one metric."""
  variant: str
  baseline: str
  metric: str
  difference: float  # variant - baseline, pooled corpus scores
  low: float  # 95% interval of the difference (2.5th percentile)
  high: float  # (97.5th percentile)
  p_value: float
  seeds: int  # pooled seeds of the variant
  baseline_seeds: int
  sentences: int


def read_lines(path: str) -> Optional[List[str]]:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().splitlines()
  except OSError:
    return None


def run_outputs(run_dir: str):
  """(hypotheses, references) of a finished run, or None if it has none."""
  hypotheses = read_lines(os.path.join(run_dir,
                                       workdir_lib.TEST_HYPOTHESES_FILE))
  references = read_lines(os.path.join(run_dir,
                                       workdir_lib.TEST_REFERENCES_FILE))
  if hypotheses is None or references is None:
    return None
  if len(hypotheses) != len(references):
    return None
  return hypotheses, references


def sentence_statistics(metric_name: str, hypotheses: Sequence[str],
                        references: Sequence[str]) -> np.ndarray:
  """[sentences, k] sufficient statistics, summable into a corpus score."""
  metric = METRICS[metric_name]()
  return np.asarray(metric._extract_corpus_statistics(  # pylint: disable=protected-access
      list(hypotheses), [list(references)]), dtype=np.float64)


def corpus_score(metric_name: str, statistics: np.ndarray) -> float:
  metric = METRICS[metric_name]()
  return metric._compute_score_from_stats(  # pylint: disable=protected-access
      list(statistics.sum(0))).score


def paired_bootstrap(metric_name: str, baseline: np.ndarray,
                     system: np.ndarray, n_samples: int = N_SAMPLES,
                     seed: int = SEED):
  """(difference, low, high, p) from per-sentence statistics [n, k] each.

  The resamples and the p-value are sacrebleu's `_paired_bs_test`: the same
  indices (numpy's default_rng(seed).choice), float32 statistics, and
  `_compute_p_value` on the centred absolute differences.
  """
  if baseline.shape[0] != system.shape[0]:
    raise ValueError(f"paired test over {baseline.shape[0]} and "
                     f"{system.shape[0]} sentences")
  metric = METRICS[metric_name]()
  n = baseline.shape[0]
  indices = np.random.default_rng(seed).choice(n, size=(n_samples, n),
                                               replace=True)
  score = lambda stats: metric._compute_score_from_stats(  # pylint: disable=protected-access
      stats.sum(0)).score
  baseline32, system32 = baseline.astype("float32"), system.astype("float32")
  scores_baseline = np.array([score(s) for s in baseline32[indices]])
  scores_system = np.array([score(s) for s in system32[indices]])
  difference = (corpus_score(metric_name, system)
                - corpus_score(metric_name, baseline))
  sample_differences = scores_system - scores_baseline
  low, high = np.percentile(sample_differences, [2.5, 97.5])
  absolute = np.abs(sample_differences)
  p_value = sacrebleu_significance._compute_p_value(  # pylint: disable=protected-access
      absolute - absolute.mean(), abs(difference))
  return float(difference), float(low), float(high), float(p_value)


def compare(metric_name: str, outputs: Dict[str, List], baseline: str
            ) -> List[Comparison]:
  """Each variant against `baseline`.

  Args:
    metric_name: a METRICS key.
    outputs: variant -> [(hypotheses, references) of each finished seed].
    baseline: the variant compared against.

  Returns:
    one Comparison per other variant with outputs on the same references.
  """
  if metric_name not in METRICS or not outputs.get(baseline):
    return []
  references = outputs[baseline][0][1]

  def pooled(runs):
    return sum(sentence_statistics(metric_name, hypotheses, references)
               for hypotheses, _ in runs)

  baseline_stats = pooled(outputs[baseline])
  comparisons = []
  for variant, runs in outputs.items():
    if variant == baseline or not runs:
      continue
    if any(refs != references for _, refs in runs + outputs[baseline]):
      continue
    difference, low, high, p_value = paired_bootstrap(
        metric_name, baseline_stats, pooled(runs))
    comparisons.append(Comparison(
        variant=variant, baseline=baseline, metric=metric_name,
        difference=difference, low=low, high=high, p_value=p_value,
        seeds=len(runs), baseline_seeds=len(outputs[baseline]),
        sentences=len(references)))
  return comparisons
