"""seq2seq_jax: RNN encoder-decoder models in JAX/Flax."""
from seq2seq_jax import cpu_random

# Before anything compiles: the same random bits, in one pass over memory on
# the CPU instead of twenty (cpu_random's docstring has the figures).
cpu_random.use_straight_line_threefry()
