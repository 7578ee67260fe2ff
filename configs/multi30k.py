"""Multi30k German -> English: a Sutskever-style 2-layer LSTM, no attention.

Anchor: the well-known PyTorch tutorial "Sequence to Sequence Learning with
Neural Networks" (2-layer LSTM 512, embedding 256, dropout 0.5, 10 epochs)
reports test BLEU 13.8 and perplexity 43.8 on test_2016_flickr (its BLEU is on
lowercased, spaCy-tokenized text: compare with `bleu_lowercase`).

Sized for 2 CPU cores and a 90-minute budget: hidden 256 instead of 512 (a
2x512 step costs 2.2x as much here), 15 epochs instead of 10, and the source
reversed (Sutskever et al. 2014), which matters most for a decoder that only
sees the context vector.

  python -m seq2seq_jax.train --config=configs/multi30k.py \
      --config.data.path=../shared/data/multi30k --workdir=DIR
"""
from configs import default


def get_config():
  config = default.get_config()
  config.data.task = "multi30k"
  config.data.path = ""  # required: --config.data.path=.../multi30k
  config.data.source_language = "de"
  config.data.target_language = "en"
  config.data.vocab.kind = "word"
  config.data.vocab.min_count = 2
  config.data.max_words = 50
  config.data.pad_multiple = 8  # with data.bucketing=multiple (docs/results.md)
  config.data.reverse_source = True
  config.model.cell = "lstm"
  config.model.num_layers = 2
  config.model.embedding_size = 256
  config.model.hidden_size = 256
  config.model.dropout = 0.3
  config.train.batch_size = 128
  config.train.num_steps = 3_400  # 15 epochs of 29,000 pairs (226 batches)
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 200
  config.train.log_every = 100
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.train.eval_batch_size = 250
  config.train.eval_decode_sentences = 500
  config.decode.max_length = 60
  return config
