"""seq2seq_jax: RNN encoder-decoder models in JAX/Flax."""
