"""benchmarks/bucketing.py: its padding count and its run order.

Speed is never asserted: the machine running the tests may be busy.
"""
import numpy as np

from benchmarks import bucketing
from tests.conftest import tiny_multi30k


def test_padding_counts_real_positions_of_one_epoch(tmp_path):
  data = tiny_multi30k(str(tmp_path / "data"))
  found = {scheme: bucketing.padding("configs/multi30k.py", data,
                                     str(tmp_path / "tfds"), scheme)
           for scheme in ("multiple", "quantile", "fitted")}
  for result in found.values():
    # 300 pairs in batches of the config's 128 sentences.
    assert result["batches"] == 2
    assert 0 < result["real_source"] <= 1 and 0 < result["real_target"] <= 1
    assert 1 <= result["shapes"] <= 2
  # Sentences of 3-6 words: multiples of 8 pad every source to 8 (7 words
  # and the end token at most), quantile buckets pad less.
  assert found["quantile"]["real_source"] > found["multiple"]["real_source"]
  assert found["fitted"]["real_source"] > found["multiple"]["real_source"]


def test_a_reversed_round_runs_each_warm_arm_after_its_cold_one():
  arms = [("before", "old"), ("multiple", "new"), ("quantile", "new"),
          ("quantile/warm", "new")]
  order = [name for name, _ in bucketing._reversed_keeping_warm(arms)]  # pylint: disable=protected-access
  assert order == ["quantile", "quantile/warm", "multiple", "before"]


def test_summary_pairs_each_round_and_step_with_the_before_arm():
  def run(epoch, steps, losses):
    return {"to_epoch_end_s": epoch, "steps_after_first_s": sum(steps),
            "median_step_s": float(np.median(steps)), "step_s": steps,
            "losses": losses}
  results = {
      "before": [run(100, [5.0, 1.0, 1.0], [3.0, 2.0]),
                 run(120, [5.0, 1.0, 1.0], [3.0, 2.0])],
      "multiple": [run(100, [5.0, 1.1, 1.0], [3.0, 2.5]),
                   run(100, [5.5, 1.0, 1.2], [3.0, 2.0])],
      "quantile": [run(50, [9.0, 0.5], [1.0]), run(80, [9.0, 0.5], [1.0])]}
  summary = bucketing.summary(results)
  # Round ratios 100/50 and 120/80: their median.
  assert np.isclose(summary["quantile"]["epoch_speedup_vs_before"], 1.75)
  # Step ratios 1, 1.1, 1, 1.1, 1, 1.2: their median.
  assert np.isclose(summary["multiple"]["step_time_ratio_vs_before"], 1.05)
  assert summary["multiple"]["max_loss_difference_vs_before"] == 0.5
  assert "step_time_ratio_vs_before" not in summary["quantile"]
  assert summary["before"]["to_epoch_end_s"] == 110
