"""No attention vs Bahdanau vs Luong (dot, general), GRU encoder-decoder, on
the PyTorch tutorial's French -> English data."""
BASE_CONFIG = "configs/eng_fra_tutorial.py"
OVERRIDES = {
    # The batching its committed runs trained with (docs/data.md).
    "data.bucketing": "multiple",
    "train.num_steps": 2_000,  # 12 epochs of 10,331 pairs at batch 64
    "train.eval_every": 500,
    "train.checkpoint_every": 1_000,
}
GRID = {"model.attention": ["none", "bahdanau", "luong_dot", "luong_general"]}
SEEDS = [0, 1, 2]
HEADLINE = "bleu"
