"""The output layer and its loss over the real target tokens only.

Why: the output layer is the step's largest matmuls, and a padded batch asks
it for logits at padding positions only to mask them out (31% of the target
positions of the bucketed Multi30k batches). Here the real positions come
first (a stable argsort of the padding mask), and a loop runs the output
layer and the loss on `CHUNK_ROWS` of them at a time, for as many chunks as
the real positions fill (the trip count is on the device, so there is still
one compilation per batch shape). Each chunk also forms its gradient:
d logits = softmax - target distribution, times the token weight, pulled
back through the output layer (`jax.vjp`) to its parameters (summed over
the chunks) and to the chunk's readouts. That is the forward pass of a
custom VJP whose backward pass only scales those gradients by the incoming
cotangent; autodiff cannot differentiate a loop whose trip count is a
traced value.

The logged metrics are the same sums as `losses.sequence_sums`; values and
gradients agree with it to float32 rounding (the weight gradient is summed
chunk by chunk, over fewer rows). Measured in docs/performance.md.
"""
import functools
from typing import Callable

import flax
import jax
import jax.extend
import jax.numpy as jnp

from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.training import losses

CHUNK_ROWS = 256

# project(output_params, readouts [n, features]) -> logits [n, vocab]
Project = Callable[[dict, jax.Array], jax.Array]


def used_params(project: Project, params, readouts: jax.Array):
  """The part of the `params` tree (a nested dict) that `project` reads:
  only these become the custom VJP's inputs, so the loop carries no zero
  gradients for the rest of the model."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  paths = list(flat)
  jaxpr = jax.make_jaxpr(
      lambda leaves, x: project(
          flax.traverse_util.unflatten_dict(dict(zip(paths, leaves))), x))(
              [flat[p] for p in paths], readouts).jaxpr
  read = {v for eqn in jaxpr.eqns for v in eqn.invars
          if isinstance(v, jax.extend.core.Var)}
  read |= {v for v in jaxpr.outvars if isinstance(v, jax.extend.core.Var)}
  return flax.traverse_util.unflatten_dict(
      {p: flat[p] for p, v in zip(paths, jaxpr.invars) if v in read})


def sequence_sums(project: Project, params, readouts: jax.Array,
                  targets: jax.Array, label_smoothing: float = 0.0):
  """`losses.sequence_sums` of `project(params, readouts)`, projecting only
  the real positions.

  Args:
    project: the output layer as a pure function of (params, rows).
    params: the parameters (a nested dict; only what `project` reads is
      differentiated through the output layer).
    readouts: [batch, length, features], what the output layer projects.
    targets: [batch, length] int ids, PAD_ID where there is no token.
    label_smoothing: as in `losses.token_cross_entropy`.

  Returns:
    (training loss, sums), as `losses.sequence_sums`.
  """
  batch, length, features = readouts.shape
  flat_readouts = readouts.reshape(batch * length, features)
  flat_targets = targets.reshape(-1)
  weights = (flat_targets != PAD_ID).astype(jnp.float32)
  output_params = used_params(project, params, flat_readouts[:1])
  loss_sum, nll, correct = _terms(project, float(label_smoothing),
                                  output_params, flat_readouts, flat_targets,
                                  weights)
  weights = weights.reshape(batch, length)
  train_loss = loss_sum / jnp.maximum(weights.sum(), 1.0)
  nll, correct = (jax.lax.stop_gradient(x).reshape(batch, length)
                  for x in (nll, correct))
  return train_loss, losses.metric_sums(nll, correct, weights)


def _chunks(project, label_smoothing, output_params, readouts, targets,
            weights, with_gradients: bool):
  """The output layer, loss terms and (optionally) gradients over the real
  positions, `CHUNK_ROWS` rows at a time, for as many chunks as the real
  positions fill."""
  positions = readouts.shape[0]
  size = min(CHUNK_ROWS, positions)
  chunks = -(-positions // size)
  # Real positions first, each side in its original order; the tail that
  # pads the last chunk points at row 0 with weight 0.
  order = jnp.argsort(weights == 0, stable=True)
  order = jnp.pad(order, (0, chunks * size - positions))
  chunk_weights = jnp.pad(weights[order[:positions]],
                          (0, chunks * size - positions))
  count = jnp.sum(weights != 0)
  used = (count + size - 1) // size

  def body(i, carry):
    rows = jax.lax.dynamic_slice_in_dim(order, i * size, size)
    w = jax.lax.dynamic_slice_in_dim(chunk_weights, i * size, size)
    x, t = readouts[rows], targets[rows]
    if with_gradients:
      logits, vjp = jax.vjp(project, output_params, x)
    else:
      logits = project(output_params, x)
    loss, nll, correct = losses.token_cross_entropy(logits, t, label_smoothing)
    loss_sum, nll_all, correct_all = carry[0]
    terms = (loss_sum + jnp.sum(loss * w), nll_all.at[rows].set(nll),
             correct_all.at[rows].set(correct))
    if not with_gradients:
      return (terms,)
    d_logits = _loss_gradient(logits, t, label_smoothing) * w[:, None]
    d_params, d_x = vjp(d_logits.astype(logits.dtype))
    total_params, total_readouts = carry[1]
    return terms, (jax.tree.map(jnp.add, total_params, d_params),
                   total_readouts.at[rows].add(d_x))

  zeros = jnp.zeros(positions, jnp.float32)
  carry = ((jnp.float32(0), zeros, zeros),)
  if with_gradients:
    carry += ((jax.tree.map(jnp.zeros_like, output_params),
               jnp.zeros_like(readouts)),)
  return jax.lax.fori_loop(0, used, body, carry)


def _loss_gradient(logits, targets, label_smoothing):
  """d(per-token training loss)/d logits: softmax - target distribution."""
  logits = logits.astype(jnp.float32)
  vocab = logits.shape[-1]
  target = jax.nn.one_hot(targets, vocab, dtype=jnp.float32)
  if label_smoothing:
    target = target * (1.0 - label_smoothing) + label_smoothing / vocab
  return jax.nn.softmax(logits, axis=-1) - target


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _terms(project, label_smoothing, output_params, readouts, targets, weights):
  """(weighted training-loss sum, per-position NLL, per-position correct)."""
  return _chunks(project, label_smoothing, output_params, readouts, targets,
                 weights, False)[0]


def _terms_fwd(project, label_smoothing, output_params, readouts, targets,
               weights):
  return _chunks(project, label_smoothing, output_params, readouts, targets,
                 weights, True)


def _terms_bwd(project, label_smoothing, gradients, cotangents):
  del project, label_smoothing
  d_loss_sum = cotangents[0]  # nll and correct are metrics: no gradient
  d_params, d_readouts = gradients
  scale = lambda g: (d_loss_sum * g).astype(g.dtype)
  return (jax.tree.map(scale, d_params), scale(d_readouts), None, None)


_terms.defvjp(_terms_fwd, _terms_bwd)


def applies(teacher_forcing: float) -> bool:
  """Whether the train and eval steps project real positions only: under
  full teacher forcing (scheduled sampling needs every step's logits), on
  one CPU device. XLA:GPU reads a loop's trip condition on the host at
  every iteration, and a sharded batch would be gathered across devices;
  neither was measured, so they project every position."""
  return (teacher_forcing >= 1.0 and jax.default_backend() == "cpu"
          and jax.device_count() == 1)

