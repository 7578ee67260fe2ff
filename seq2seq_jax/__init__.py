"""seq2seq_jax: RNN encoder-decoder models in JAX/Flax."""
from seq2seq_jax import cpu_random

# Before anything compiles: the same random bits, drawn on the CPU in one
# pass over memory instead of a loop of them (cpu_random's docstring says
# why and what it gives).
cpu_random.use_straight_line_threefry()
