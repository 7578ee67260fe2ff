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
  attention_loop   (Bahdanau cases) the decoder's step-by-step loop up to
                   the readouts (attention, recurrent layers), forward +
                   backward, from a fixed encoding; kernels: per step its
                   matmuls, the context sum and the additive scores' tanh
                   (recomputed in the backward pass, as the loop does) with
                   the same step-to-step dependence, and each matmul's
                   weight gradient as one matmul over all steps
  rest             full_step - optimizer - (encoder layers x recurrent_layer)
                   - output_layer - attention_loop: embeddings, bridge, the
                   attention keys, the accuracy metric and the non-finite
                   checks, gate work of the other layers

  python -m benchmarks.step_profile [--case=lstm_h512] [--repeats=7]
      [--host_memory=keep] [--tiny]

`--tiny` shrinks the case as `benchmarks.benchmark --tiny` does (seconds,
for tests). `--host_memory=keep` applies `SEQ2SEQ_JAX_HOST_MEMORY=keep`
(seq2seq_jax/host_memory.py) before JAX starts, as the train command does.

Cases are those of benchmarks/compare_pytorch.py (the standard set, in sides.py)
and benchmarks/cases.py.
"""
import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import benchmark
from benchmarks import cases as cases_lib
from benchmarks import flops
from seq2seq_jax import host_memory
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.models.recurrent import RecurrentLayer
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import compact_output
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


def _total_seconds(timed, parts):
  """Sum of the timed (jitted function, args) parts, each warmed up first."""
  total = 0.0
  for fn, args in parts:
    jax.block_until_ready(fn(*args))
    total += timed(lambda fn=fn, args=args: fn(*args))
  return total


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
  return _total_seconds(timed, parts)


def _attention_kernels(timed, b, t, s, m):
  """Seconds of a Bahdanau decoder loop's kernels alone (see the module
  docstring): forward and backward as t dependent steps each, then the
  weight gradients, each one matmul over all steps."""
  e, h = m.embedding_size, settings_lib.decoder_hidden_size(m)
  gates, memory_size = GATES[m.cell], settings_lib.encoder_output_size(m)
  units = h  # the decoder builds Attention(kind, units=hidden_size)
  keys, memory = _normal(0, (b, s, units)), _normal(1, (b, s, memory_size))
  w_q, v = _normal(2, (h, units), 0.05), _normal(3, (units, 1), 0.05)
  w_x = [_normal(4, (e + memory_size, gates * h), 0.05)] + [
      _normal(4 + k, (h, gates * h), 0.05) for k in range(1, m.num_layers)]
  w_h = [_normal(10 + k, (h, gates * h), 0.05) for k in range(m.num_layers)]
  embedded, h0 = _normal(6, (b, e)), _normal(7, (b, h))

  def scores(query):
    hidden = jnp.tanh(keys + (query @ w_q)[:, None])
    return hidden, (hidden @ v)[..., 0]

  def forward(h0):
    def step(state, _):
      _, weights = scores(state)
      x = jnp.concatenate(
          [embedded, jnp.einsum("bs,bsd->bd", weights, memory)], -1)
      for w_in, w_rec in zip(w_x, w_h):
        x = jnp.tanh((x @ w_in + state @ w_rec)[:, :h])
      return x, None
    return jax.lax.scan(step, h0, None, length=t)[0]

  def backward(d0):
    def step(carry, _):
      d, d_keys, d_memory = carry
      d_state = 0.0
      for w_in, w_rec in zip(reversed(w_x), reversed(w_h)):
        d_gates = jnp.tile(d, (1, gates))
        d_state = d_state + d_gates @ w_rec.T
        d = d_gates @ w_in.T
      d_context = d[:, e:]
      hidden, weights = scores(d_state)  # the recomputed forward scores
      d_weights = jnp.einsum("bd,bsd->bs", d_context, memory)
      d_pre = (1 - hidden ** 2) * (d_weights[..., None] * v[:, 0])
      d_state = d_state + d_pre.sum(1) @ w_q.T
      return (jnp.tanh(d_state), d_keys + d_pre,
              d_memory + weights[..., None] * d_context[:, None]), None
    return jax.lax.scan(step, (d0, jnp.zeros_like(keys),
                               jnp.zeros_like(memory)), None, length=t)[0]

  steps_x = _normal(8, (t * b, e + memory_size))
  steps_h, d_gates = _normal(9, (t * b, h)), _normal(3, (t * b, gates * h))
  d_pre = _normal(5, (t * b, units))
  parts = [(jax.jit(forward), (h0,)), (jax.jit(backward), (h0,)),
           (jax.jit(lambda x, d: x.T @ d), (steps_x, d_gates)),
           (jax.jit(lambda x, d: x.T @ d), (steps_h, d_pre))]
  parts += [(jax.jit(lambda x, d: x.T @ d), (steps_h, d_gates))] * (
      2 * m.num_layers - 1)
  return _total_seconds(timed, parts)


def _attention_loop_flops(m, b, s, t, vocab):
  """Matmul FLOPs of the loop, forward + backward: the decoder's recurrent
  layers and attention, less the keys (projected once, in `encode`)."""
  forward = flops.forward_flops(m, b, s, t, vocab)
  keys = flops.matmul(b * s, settings_lib.decoder_hidden_size(m),
                      settings_lib.encoder_output_size(m))
  return (1 + flops.BACKWARD_FACTOR) * (
      forward["decoder_rnn"] + forward["attention"] - keys)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--case", default="lstm_h512")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--tiny", action="store_true",
                      help="tiny sizes: seconds, for tests")
  parser.add_argument("--host_memory", default="default",
                      choices=host_memory.MODES,
                      help="glibc allocator settings (seq2seq_jax/"
                      "host_memory.py)")
  args = parser.parse_args(argv)
  os.environ[host_memory.ENV_VAR] = args.host_memory
  host_memory.configure()  # Before JAX's first computation starts threads.

  cases = _cases()
  if args.case not in cases:
    parser.error(f"unknown --case {args.case!r}; valid: {', '.join(cases)}")
  case = cases_lib.shrink(cases[args.case]) if args.tiny else cases[args.case]
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

  size = 256 if args.tiny else 2048
  peak = benchmark.run_matmul(size, 5)["matmul_gflops"]
  print(f"matmul {size}^2: {peak:.1f} GFLOP/s; case {args.case}: batch {b}, "
        f"lengths {source_length}/{target_length}; host memory kept: "
        f"{'yes' if host_memory.applied() else 'no'}")
  # The rows the train step's output layer projects: the real positions
  # where compact_output applies, else all (None).
  output_rows = flops.output_rows_of(batch["target_outputs"])
  compact = output_rows is not None
  total = flops.train_step_flops(m, b, source_length, target_length, vocab,
                                 output_rows)

  train = jax.jit(steps.train_step)
  jax.block_until_ready(train(state, batch, rng))
  full = timed(lambda: train(state, batch, rng))
  _report("full_step", full, total, peak)

  def loss(params):
    if compact:  # as the train step: the output layer on real positions
      return steps._compact_loss(state, params, batch, train=False)[0]  # pylint: disable=protected-access
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

  # The output layer at the model's readout width, as the train step runs
  # it: on the real positions only where compact_output applies.
  kernel_shape = next(
      leaf.shape for leaf in jax.tree.leaves(state.params)
      if leaf.ndim == 2 and leaf.shape[1] == vocab)
  readout = kernel_shape[0]
  targets = batch["target_outputs"]
  n = output_rows if compact else b * target_length
  hidden = _normal(1, (b * target_length, readout))
  kernel = _normal(2, (readout, vocab), 0.01)
  logits = _normal(3, (n, vocab))
  real_targets = targets[targets != PAD_ID] if compact else targets.reshape(-1)

  def output_loss(w, h):
    if compact:
      return compact_output.sequence_sums(
          lambda p, x: x @ p["kernel"], {"kernel": w},
          h.reshape(b, target_length, readout), targets)[0]
    return losses.sequence_sums((h @ w).reshape(b, target_length, vocab),
                                targets)[0]

  def ce(l):  # the cross-entropy alone on the projected rows
    return losses.sequence_sums(l[None], real_targets[None])[0]

  output_grad = jax.jit(jax.grad(output_loss, argnums=(0, 1)))
  jax.block_until_ready(output_grad(kernel, hidden))
  kernel_parts = [
      (jax.jit(lambda h, w: h @ w), (hidden[:n], kernel)),
      (jax.jit(lambda h, g: h.T @ g), (hidden[:n], logits)),
      (jax.jit(lambda g, w: g @ w.T), (logits, kernel)),
      (jax.jit(jax.grad(ce)), (logits,)),
  ]
  output_kernels = _total_seconds(timed, kernel_parts)
  output_time = timed(lambda: output_grad(kernel, hidden))
  _report("output_layer", output_time, 3 * 2 * n * readout * vocab, peak,
          output_kernels)

  loop_time, loop_note = 0.0, ""
  if m.attention == "bahdanau":
    loop_time = _attention_loop(timed, model, state.params, batch)
    _report("attention_loop", loop_time,
            _attention_loop_flops(m, b, source_length, target_length, vocab),
            peak,
            _attention_kernels(timed, b, target_length, source_length, m))
    loop_note = " - attention_loop"
  elif m.attention != "none":
    print(f"attention_loop   not profiled for {m.attention!r} (Bahdanau only); "
          "it is part of the rest")
  layers = m.num_layers * (2 if m.bidirectional else 1) + (
      0 if m.attention != "none" else m.num_layers)
  rest = full - adam - layers * layer_time - output_time - loop_time
  print(f"rest             {rest * 1e3:9.1f} ms  (full step - optimizer - "
        f"{layers} x recurrent_layer - output_layer{loop_note})")


def _attention_loop(timed, model, params, batch):
  """Seconds of the decoder's attention loop, forward + backward, from the
  batch's encoding (differentiated in the decoder's parameters and in the
  encoder outputs and keys the loop reads)."""
  carry = model.apply({"params": params}, batch["source"],
                      method=Seq2Seq.encode)
  fixed = {"memory_mask": carry["memory_mask"]}  # bool: not differentiated
  inputs = {k: v for k, v in carry.items() if k not in fixed}

  def loss(decoder_params, inputs):
    readouts = model.apply(
        {"params": dict(params, decoder=decoder_params)}, {**inputs, **fixed},
        batch["target_inputs"],
        method=lambda module, c, t: module.decoder.attention_readouts(
            c, t, train=False))
    return jnp.sum(readouts ** 2)

  loop_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  jax.block_until_ready(loop_grad(params["decoder"], inputs))
  return timed(lambda: loop_grad(params["decoder"], inputs))


if __name__ == "__main__":
  main()
