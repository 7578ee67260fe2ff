"""LSTM vs GRU on seconds-long smoke runs: a check of the study runner itself."""
BASE_CONFIG = "configs/smoke.py"
OVERRIDES = {
    "train.num_steps": 10,
    "train.eval_every": 10,
    "train.checkpoint_every": 10,
    "train.log_every": 5,
    "data.synthetic.num_train": 500,
    "data.synthetic.num_validation": 50,
    "data.synthetic.num_test": 50,
}
GRID = {"model.cell": ["lstm", "gru"]}
SEEDS = [0, 1]
HEADLINE = "sequence_accuracy"
