"""The PyTorch seq2seq tutorial's setup: French -> English on eng-fra.txt.

As in "NLP From Scratch: Translation with a Sequence to Sequence Network and
Attention": lowercase, accents stripped, punctuation split, at most 9 words per
side (`< MAX_LENGTH = 10`), English side starting with "i am / he is / she is /
you are / we are / they are" (and contractions); word vocabularies; a GRU.
Unlike the tutorial (which scores no held-out set) the pairs are split 90/5/5
by connected group (pairs sharing a French or an English sentence stay
together, so no test sentence of either side occurs in training), and BLEU is
measured on the test split.

  python -m seq2seq_jax.train --config=configs/eng_fra_tutorial.py \
      --config.data.path=../shared/data/eng-fra/eng-fra.txt --workdir=DIR
"""
from configs import default


def get_config():
  config = default.get_config()
  config.data.task = "tsv"
  config.data.path = ""  # required: --config.data.path=.../eng-fra.txt
  config.data.source_language = "fr"
  config.data.target_language = "en"
  config.data.preset = "tutorial"
  config.data.vocab.kind = "word"
  config.model.cell = "gru"
  config.model.embedding_size = 256
  config.model.hidden_size = 256
  config.model.dropout = 0.1
  config.train.batch_size = 64
  config.train.num_steps = 6_000
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 200
  config.train.log_every = 200
  config.train.eval_every = 1_000
  config.train.checkpoint_every = 1_000
  config.train.eval_batch_size = 256
  config.train.eval_decode_sentences = 0
  return config
