"""Every default of seq2seq_jax lives here; other configs override a few keys.

Usage: `--config=configs/base.py` (same as default.py), or import it from another
config file and change what differs. The config is locked: a misspelt key on the
command line or in an override file is an error, never silently ignored.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Seeds parameter init, dropout, shuffling and scheduled sampling. The dataset
  # has its own seed (data.generator_seed) so runs over seeds share one dataset.
  config.seed = 0

  config.model = ml_collections.ConfigDict()
  config.model.cell = "lstm"  # lstm | gru | rnn
  config.model.num_layers = 1
  config.model.embedding_size = 64
  config.model.hidden_size = 256  # encoder hidden size (per direction)
  config.model.decoder_hidden_size = 0  # 0: same as model.hidden_size
  config.model.bidirectional = False
  config.model.bridge = "copy"  # copy | linear | zero
  config.model.dropout = 0.0  # between layers and before the output projection

  config.data = ml_collections.ConfigDict()
  config.data.task = "addition"  # addition | copy | reverse | sort
  config.data.reverse_source = False  # Sutskever et al. 2014
  config.data.min_length = 1  # digits per operand (addition) or symbols (others)
  config.data.max_length = 3
  config.data.vocab_size = 10  # symbol alphabet size for copy / reverse / sort
  config.data.num_train = 50_000
  config.data.num_validation = 1_000
  config.data.num_test = 1_000
  config.data.generator_seed = 0
  config.data.tfds_data_dir = ""  # "" = TFDS default (~/tensorflow_datasets)

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 3_000
  config.train.batch_size = 128
  config.train.optimizer = "adam"  # adam | adamw
  config.train.learning_rate = 3e-3
  config.train.lr_schedule = "cosine"  # constant | cosine | linear | rsqrt
  config.train.warmup_steps = 100
  config.train.weight_decay = 0.0  # adamw only
  config.train.grad_clip_norm = 1.0  # 0 disables clipping
  config.train.label_smoothing = 0.0
  config.train.teacher_forcing = 1.0  # probability of feeding the gold token
  config.train.max_consecutive_nonfinite = 10  # skipped updates before stopping
  # Stop (with a checkpoint) after this many steps in one invocation; 0 = no
  # limit. Splits a long run into resumable segments.
  config.train.max_steps_per_run = 0
  config.train.log_every = 100
  config.train.eval_every = 500
  config.train.checkpoint_every = 1_000
  config.train.keep_checkpoints = 3
  config.train.eval_batch_size = 500
  config.train.num_eval_samples = 3  # decoded examples logged per evaluation

  config.decode = ml_collections.ConfigDict()
  config.decode.max_length = 0  # 0: the longest target of the dataset

  config.lock()
  return config
