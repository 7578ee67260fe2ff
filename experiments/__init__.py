"""Research comparisons over seeds (ablation runner and benchmark arrive here)."""
