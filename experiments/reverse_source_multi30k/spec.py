"""Source reversal on/off (Sutskever et al. 2014), LSTM without attention, on
Multi30k German -> English; one layer and 5 epochs to fit 2 CPU cores."""
BASE_CONFIG = "configs/multi30k.py"
OVERRIDES = {
    # The batching its committed runs trained with (docs/data.md).
    "data.bucketing": "multiple",
    "model.num_layers": 1,
    "train.num_steps": 1_130,  # 5 epochs of 29,000 pairs at batch 128
    "train.warmup_steps": 100,
    "train.eval_every": 565,
    "train.checkpoint_every": 565,
}
GRID = {"data.reverse_source": [False, True]}
SEEDS = [0, 1, 2]
HEADLINE = "bleu"
# sacrebleu's default (cased, detokenized, 13a) beside the lowercased variant,
# the one closest to the Multi30k anchors' BLEU on lowercased tokens.
METRICS = ["bleu", "bleu_lowercase", "loss", "perplexity", "chrf"]
