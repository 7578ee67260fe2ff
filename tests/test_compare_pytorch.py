"""The PyTorch reference of the speed comparison computes what the project
computes: loss, every gradient and the clipped Adam update agree."""
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install -r "
    "benchmarks/requirements.txt); the equal-work check of "
    "benchmarks/compare_pytorch.py was not run")

from benchmarks import compare_pytorch  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import sides  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.parametrize("name", list(sides.CASES))
def test_reference_and_project_do_equal_work(name):
  result = sides.check_equal_work(name, tiny=True)
  assert result["max_grad_error"] <= 1.0


def test_the_check_catches_a_different_model(monkeypatch):
  load = torch_reference.load_project_params

  def off_by_one_percent(model, params):
    load(model, params)
    with torch.no_grad():
      model.output.weight.mul_(1.01)

  monkeypatch.setattr(torch_reference, "load_project_params",
                      off_by_one_percent)
  with pytest.raises(AssertionError):
    sides.check_equal_work("lstm_h512", tiny=True)


@pytest.mark.slow
def test_interleaved_comparison_runs_and_reports_ratios():
  result = compare_pytorch.compare(["lstm_h512"], rounds=2, repeats=1,
                                   tiny=True, decode=True)
  (case,) = result["cases"]
  assert len(case["ratios"]) == 2 and case["ratio"] > 0
  assert case["jax_tokens_per_s"] > 0 and case["torch_tokens_per_s"] > 0
  assert case["greedy_ratio"] > 0 and case["beam5_over_greedy"] > 0
  assert len(result["jax_matmul_gflops_rounds"]) == 2
  assert "ratio" in compare_pytorch.format_table(result)
