"""Separate embedding and output matrices vs one tied matrix (Press & Wolf
2017), GRU encoder-decoder with Bahdanau attention, on the PyTorch tutorial's
French -> English data."""
BASE_CONFIG = "configs/eng_fra_tutorial.py"
OVERRIDES = {
    # The batching its committed runs trained with (docs/data.md).
    "data.bucketing": "multiple",
    "model.attention": "bahdanau",
    "train.num_steps": 2_000,  # 12 epochs of 10,309 pairs at batch 64
    "train.eval_every": 500,
    "train.checkpoint_every": 1_000,
}
GRID = {"model.tie_embeddings": ["none", "decoder"]}
SEEDS = [0, 1, 2]
HEADLINE = "bleu"
