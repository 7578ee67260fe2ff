"""Model-agnostic decoding over `step_fn(tokens, carry) -> (logits, carry)`.

The search knows nothing of the model: the carry is any pytree, and the model
supplies the step (see `model.Seq2Seq.decode_step`). No search ever emits PAD
or BOS (`never_emit`): a model may give them probability, but PAD would end a
hypothesis silently and BOS is input only.
"""
from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp

from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.decoding.argmax import first_argmax

StepFn = Callable[[jax.Array, Any], Tuple[jax.Array, Any]]


def never_emit(logits: jax.Array, bos_id: int) -> jax.Array:
  """logits [..., vocab] with PAD and BOS set to -inf."""
  return logits.at[..., jnp.asarray([PAD_ID, bos_id])].set(-jnp.inf)


def generate(step_fn: StepFn, carry: Any, batch_size: int, max_length: int,
             bos_id: int, eos_id: int, choose) -> jax.Array:
  """Token-by-token decoding with a pluggable choice (argmax, sampling).

  Args:
    step_fn: (tokens [batch], carry) -> (logits [batch, vocab], carry).
    carry: the initial carry.
    batch_size: rows.
    max_length: most tokens generated per row (EOS included).
    bos_id, eos_id: start and end ids.
    choose: (logits [batch, vocab], step index) -> tokens [batch].

  Returns:
    [batch, max_length] int32 tokens; EOS is kept, positions after it are PAD.
    Stops as soon as every row has emitted EOS.
  """
  def cond(state):
    i, _, _, _, finished = state
    return (i < max_length) & ~jnp.all(finished)

  def body(state):
    i, tokens, carry, last, finished = state
    logits, carry = step_fn(last, carry)
    chosen = choose(never_emit(logits, bos_id), i).astype(jnp.int32)
    chosen = jnp.where(finished, PAD_ID, chosen)
    tokens = tokens.at[:, i].set(chosen)
    return i + 1, tokens, carry, chosen, finished | (chosen == eos_id)

  state = (jnp.int32(0), jnp.full((batch_size, max_length), PAD_ID, jnp.int32),
           carry, jnp.full((batch_size,), bos_id, jnp.int32),
           jnp.zeros((batch_size,), bool))
  return jax.lax.while_loop(cond, body, state)[1]


def greedy_search(step_fn: StepFn, carry: Any, batch_size: int,
                  max_length: int, bos_id: int, eos_id: int) -> jax.Array:
  """Argmax decoding until every row has emitted EOS or max_length tokens.

  Returns:
    [batch, max_length] int32 tokens; EOS is kept, positions after it are PAD.
  """
  return generate(step_fn, carry, batch_size, max_length, bos_id, eos_id,
                  lambda logits, i: first_argmax(logits))
