"""Multi30k German -> English: the attention model with what pays on top.

configs/multi30k_attention.py's bi-GRU 256 + Bahdanau attention, plus:
  * one SentencePiece vocabulary of 8,000 pieces for both languages
    (data.vocab.shared), so names and numbers are shared pieces;
  * all three embedding matrices tied into one (model.tie_embeddings=all,
    Press & Wolf 2017), which also shrinks the output layer, the largest
    matmul of the step, from a 768-wide readout to a 256-wide projection;
  * label smoothing 0.1;
  * checkpoints kept for averaging the last five (python -m seq2seq_jax.average).
Decoded with beam search and a length penalty chosen on the validation split;
seeds can be ensembled (evaluate --workdir=A --workdir=B ...). Sized to train
in under an hour on 2 CPU cores. Measured: docs/results.md.

  python -m seq2seq_jax.train --config=configs/multi30k_recipe.py \
      --config.data.path=../shared/data/multi30k --workdir=DIR
"""
from configs import multi30k_attention


def get_config():
  config = multi30k_attention.get_config()
  config.data.vocab.kind = "sentencepiece"
  config.data.vocab.size = 8_000
  config.data.vocab.shared = True
  config.data.max_words = 80  # pieces, not words: keep the same sentences
  config.model.tie_embeddings = "all"
  config.train.label_smoothing = 0.1
  config.train.num_steps = 3_200
  config.train.checkpoint_every = 200
  config.train.keep_checkpoints = 5
  config.train.eval_every = 400
  return config
