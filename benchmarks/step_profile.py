"""Where a train step's time goes: its parts timed alone, each against its kernels.

Each part is jitted and timed alone on the case's batch (median of repeats,
after warm-up), beside the same matmuls (and, for the output layer, the
cross-entropy) timed alone at the part's shapes: `vs kernels` is kernels'
time / part's time, so 100% means the part costs no more than its kernels.

  full_step        forward + backward + Adam (steps.train_step)
  grad_only        forward + backward, no optimizer update
  optimizer_only   Adam + clipping on a gradient tree of the params' shapes
  recurrent_layer  one encoder layer (one direction), forward + backward;
                   kernels: input projection, the recurrent scan of h @ W_hh,
                   and their backward matmuls (data and weight gradients)
  output_layer     output projection + softmax cross-entropy, forward +
                   backward, on fixed inputs; kernels: its three matmuls and
                   the cross-entropy's forward + backward on fixed logits
  rest             full_step - optimizer - (layers x recurrent_layer) -
                   output_layer: embeddings, bridge, attention, gate work
                   of the other layers

  python -m benchmarks.step_profile [--case=lstm_h512] [--repeats=7]

Cases are those of benchmarks/compare_pytorch.py (the standard set, in sides.py)
and benchmarks/cases.py.
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import benchmark
from benchmarks import cases as cases_lib
from benchmarks import flops
from seq2seq_jax.models.recurrent import RecurrentLayer
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import losses
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _cases():
  from benchmarks import sides  # pylint: disable=import-outside-toplevel
  return {**cases_lib.CASES, **cases_lib.EXTRA_CASES, **sides.CASES}


def _report(name, seconds, matmul_flops, peak, kernels=None):
  rate = matmul_flops / seconds / 1e9 if matmul_flops else 0.0
  share = f"{rate / peak:6.1%}" if matmul_flops else "     -"
  against = f"  vs kernels {kernels / seconds:6.1%}" if kernels else ""
  print(f"{name:16s} {seconds * 1e3:9.1f} ms  {rate:7.1f} GFLOP/s  "
        f"{share}{against}")


def _normal(seed, shape, scale=1.0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale,
                     jnp.float32)


def _layer_kernels(timed, b, t, features, hidden, gates):
  """Seconds of a recurrent layer's matmuls alone, forward and backward."""
  x, w_x = _normal(0, (t * b, features)), _normal(1, (features, gates * hidden))
  w_h, dgates = _normal(2, (hidden, gates * hidden), 0.01), _normal(
      3, (t * b, gates * hidden))
  h0, hs = _normal(4, (b, hidden)), _normal(5, (t * b, hidden))

  def recurrent(w, h):  # t dependent steps of h @ W_hh
    def step(h, _):
      return jnp.tanh((h @ w)[:, :hidden]), None
    return jax.lax.scan(step, h, None, length=t)[0]

  def recurrent_back(w, dh):  # t dependent steps of d_gates @ W_hh^T
    def step(d, _):
      return jnp.tile(jnp.tanh(d), (1, gates)) @ w.T, None
    return jax.lax.scan(step, dh, None, length=t)[0]

  parts = [
      (jax.jit(lambda x, w: x @ w), (x, w_x)),                  # input proj
      (jax.jit(recurrent), (w_h, h0)),                          # h @ W_hh
      (jax.jit(lambda d, w: d @ w.T), (dgates, w_x)),           # d inputs
      (jax.jit(lambda x, d: x.T @ d), (x, dgates)),             # d W_x
      (jax.jit(recurrent_back), (w_h, h0)),                    # d h chain
      (jax.jit(lambda h, d: h.T @ d), (hs, dgates)),            # d W_hh
  ]
  total = 0.0
  for fn, args in parts:
    jax.block_until_ready(fn(*args))
    total += timed(lambda fn=fn, args=args: fn(*args))
  return total


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--case", default="lstm_h512")
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args(argv)

  cases = _cases()
  if args.case not in cases:
    parser.error(f"unknown --case {args.case!r}; valid: {', '.join(cases)}")
  case = cases[args.case]
  s = cases_lib.settings_for(case)
  m = s.model
  batch = {k: jnp.asarray(v) for k, v in cases_lib.make_batch(case).items()}
  b, source_length = batch["source"].shape
  target_length = batch["target_outputs"].shape[1]
  vocab = case.target_vocab_size
  model = Seq2Seq(m, case.source_vocab_size, vocab)
  tx = optimizer_lib.make_optimizer(s.train)
  state = steps.create_train_state(model, tx, steps.StepOptions.from_settings(
      s.train), jax.random.PRNGKey(0), source_length, target_length)
  rng = jax.random.PRNGKey(1)
  timed = lambda fn: benchmark._median_seconds(fn, args.repeats)  # pylint: disable=protected-access

  peak = benchmark.run_matmul(2048, 5)["matmul_gflops"]
  print(f"matmul 2048^2: {peak:.1f} GFLOP/s; case {args.case}: batch {b}, "
        f"lengths {source_length}/{target_length}")
  total = flops.train_step_flops(m, b, source_length, target_length, vocab)

  train = jax.jit(steps.train_step)
  jax.block_until_ready(train(state, batch, rng))
  full = timed(lambda: train(state, batch, rng))
  _report("full_step", full, total, peak)

  def loss(params):
    logits = model.apply({"params": params}, batch["source"],
                         batch["target_inputs"], train=False)
    return losses.sequence_sums(logits, batch["target_outputs"])[0]

  grad = jax.jit(jax.grad(loss))
  jax.block_until_ready(grad(state.params))
  _report("grad_only", timed(lambda: grad(state.params)), total, peak)

  grads = jax.tree.map(jnp.ones_like, state.params)

  @jax.jit
  def update(params, opt_state):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  jax.block_until_ready(update(state.params, state.opt_state))
  adam = timed(lambda: update(state.params, state.opt_state))
  _report("optimizer_only", adam, 0, peak)

  # One encoder layer (the first: embeddings in), forward + backward.
  gates = GATES[m.cell]
  layer = RecurrentLayer(m.cell, m.hidden_size,
                         implementation=m.recurrence, remat=m.remat)
  xs = _normal(0, (b, source_length, m.embedding_size))
  mask = jnp.ones((b, source_length), bool)
  carry = layer.zero_carry(b)
  variables = layer.init(jax.random.PRNGKey(0), carry, xs, mask)
  layer_grad = jax.jit(jax.grad(
      lambda v, x: jnp.sum(layer.apply(v, carry, x, mask)[1] ** 2),
      argnums=(0, 1)))
  jax.block_until_ready(layer_grad(variables, xs))
  layer_flops = 3 * 2 * b * source_length * gates * m.hidden_size * (
      m.embedding_size + m.hidden_size)
  layer_time = timed(lambda: layer_grad(variables, xs))
  _report("recurrent_layer", layer_time, layer_flops, peak,
          _layer_kernels(timed, b, source_length, m.embedding_size,
                         m.hidden_size, gates))

  # The output layer at the model's readout width.
  kernel_shape = next(
      leaf.shape for leaf in jax.tree.leaves(state.params)
      if leaf.ndim == 2 and leaf.shape[1] == vocab)
  readout = kernel_shape[0]
  n = b * target_length
  hidden = _normal(1, (n, readout))
  kernel = _normal(2, (readout, vocab), 0.01)
  logits = _normal(3, (n, vocab))
  targets = batch["target_outputs"]

  def ce(l):
    return losses.sequence_sums(l.reshape(b, target_length, vocab),
                                     targets)[0]

  output_grad = jax.jit(jax.grad(lambda w, h: ce(h @ w), argnums=(0, 1)))
  jax.block_until_ready(output_grad(kernel, hidden))
  kernel_parts = [
      (jax.jit(lambda h, w: h @ w), (hidden, kernel)),
      (jax.jit(lambda h, g: h.T @ g), (hidden, logits)),
      (jax.jit(lambda g, w: g @ w.T), (logits, kernel)),
      (jax.jit(jax.grad(ce)), (logits,)),
  ]
  output_kernels = 0.0
  for fn, fn_args in kernel_parts:
    jax.block_until_ready(fn(*fn_args))
    output_kernels += timed(lambda fn=fn, fn_args=fn_args: fn(*fn_args))
  output_time = timed(lambda: output_grad(kernel, hidden))
  _report("output_layer", output_time, 3 * 2 * n * readout * vocab, peak,
          output_kernels)

  layers = m.num_layers * (2 if m.bidirectional else 1) + (
      0 if m.attention != "none" else m.num_layers)
  rest = full - adam - layers * layer_time - output_time
  print(f"rest             {rest * 1e3:9.1f} ms  (full step - optimizer - "
        f"{layers} x recurrent_layer - output_layer)")


if __name__ == "__main__":
  main()
