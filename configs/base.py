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
  config.model.hidden_size = 128  # encoder hidden size (per direction)
  config.model.decoder_hidden_size = 0  # 0: same as model.hidden_size
  config.model.bidirectional = False
  config.model.bridge = "copy"  # copy | linear | zero
  config.model.dropout = 0.0  # between layers and before the output projection
  # none | bahdanau | luong_dot | luong_general | luong_concat
  config.model.attention = "none"
  config.model.input_feeding = False  # Luong et al. 2015 (luong_* only)
  # fused: hand-written backward pass for the recurrence (fast); scan: Flax
  # nn.scan differentiated by JAX. Same function, see recurrent.py.
  config.model.recurrence = "fused"
  config.model.remat = False  # recompute the recurrence in backward: less memory

  config.data = ml_collections.ConfigDict()
  # Synthetic: addition | copy | reverse | sort. Parallel text: tsv (a
  # tab-separated pairs file), multi30k (a directory), tfds (a TFDS name).
  config.data.task = "addition"
  config.data.reverse_source = False  # Sutskever et al. 2014
  config.data.tfds_data_dir = ""  # "" = TFDS default (~/tensorflow_datasets)
  # Synthetic tasks.
  config.data.min_length = 1  # digits per operand (addition) or symbols (others)
  config.data.max_length = 3
  config.data.num_symbols = 10  # alphabet size for copy / reverse / sort
  config.data.num_train = 200_000
  config.data.num_validation = 1_000
  config.data.num_test = 1_000
  config.data.generator_seed = 0
  # Parallel text.
  config.data.path = ""  # tsv: the file; multi30k: the directory
  config.data.tfds_name = ""  # tfds: e.g. "wmt14_translate/de-en"
  config.data.source_language = ""  # e.g. "fr"; tsv: one side must be "en"
  config.data.target_language = ""
  config.data.preset = "none"  # none | tutorial (the PyTorch tutorial's filter)
  config.data.min_words = 1  # training pairs: words per side, inclusive
  # Training pairs with more words on a side are dropped (one outlier would
  # pad every batch to its length); 0 = no limit.
  config.data.max_words = 100
  config.data.strict = False  # a malformed line is an error, not a counted reject
  # Stop when more than this fraction of a file's lines are malformed.
  config.data.max_rejected_fraction = 0.05
  config.data.vocab_kind = "word"  # word | sentencepiece
  config.data.vocab_size = 0  # most ids incl. 4 specials; 0 = all (word only)
  config.data.vocab_min_count = 1  # word: fewest occurrences to get an id
  config.data.sentencepiece_model = "unigram"  # unigram | bpe
  config.data.shared_vocab = False  # one vocabulary for both sides
  config.data.pad_multiple = 0  # pad lengths up to a multiple (0 = longest)

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 12_000
  config.train.batch_size = 128
  # > 0: batch by a token budget instead (rows x padded length per batch,
  # bucketed by config.data.pad_multiple); batch_size is then unused.
  config.train.batch_tokens = 0
  # Compute dtype: bfloat16 computes in bf16 (for GPU/TPU) while parameters
  # and optimizer state stay float32.
  config.train.dtype = "float32"
  config.train.optimizer = "adam"  # adam | adamw
  config.train.learning_rate = 6e-3
  config.train.lr_schedule = "cosine"  # constant | cosine | linear | rsqrt
  config.train.warmup_steps = 100
  # Steps the schedule's decay spans (0 = num_steps). Set it to the original
  # num_steps to extend a finished run at its final learning rate.
  config.train.schedule_steps = 0
  config.train.weight_decay = 0.0  # adamw only
  config.train.grad_clip_norm = 1.0  # 0 disables clipping
  config.train.label_smoothing = 0.0
  config.train.teacher_forcing = 1.0  # probability of feeding the gold token
  config.train.max_consecutive_nonfinite = 10  # skipped updates before stopping
  # Stop (with a checkpoint) after this many steps in one invocation; 0 = no
  # limit. Splits a long run into resumable segments.
  config.train.max_steps_per_run = 0
  config.train.log_every = 200
  config.train.eval_every = 1_000
  config.train.checkpoint_every = 2_000
  config.train.keep_checkpoints = 3
  config.train.eval_batch_size = 500
  config.train.num_eval_samples = 3  # decoded examples logged per evaluation
  config.train.eval_decode_sentences = 0  # greedy-decoded for BLEU; 0 = all

  config.decode = ml_collections.ConfigDict()
  config.decode.max_length = 0  # 0: the longest target of the dataset

  config.lock()
  return config
