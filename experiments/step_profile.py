"""Where a train step's time goes: its parts timed alone (an ablation profile).

Question: the standard LSTM case reaches ~60% of the matmul peak; which part
of the step keeps it from 75%? Each part below is jitted and timed alone on
the benchmark's batch (median of repeats, after warm-up), with its analytic
matmul FLOPs where it has any:

  full_step        forward + backward + Adam (steps.train_step)
  grad_only        forward + backward, no optimizer update
  forward_only     the loss alone
  optimizer_only   Adam + clipping on a gradient tree of the params' shapes
  encoder_layer    one encoder LSTM layer, forward + backward
  output_layer     decoder output projection + softmax cross-entropy,
                   forward + backward, on fixed hidden states

  python -m experiments.step_profile [--case=lstm_h512] [--repeats=7]
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import benchmark
from experiments import flops
from seq2seq_jax import metrics as metrics_lib
from seq2seq_jax import optimizer as optimizer_lib
from seq2seq_jax import steps
from seq2seq_jax.model import Seq2Seq
from seq2seq_jax.recurrent import RecurrentLayer


def _report(name, seconds, matmul_flops, peak):
  rate = matmul_flops / seconds / 1e9 if matmul_flops else 0.0
  share = f"{rate / peak:6.1%}" if matmul_flops else "     -"
  print(f"{name:16s} {seconds * 1e3:9.1f} ms  {rate:7.1f} GFLOP/s  {share}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--case", default="lstm_h512")
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args(argv)

  case = benchmark.get_case(args.case)
  s = benchmark.settings_for(case)
  m = s.model
  batch = {k: jnp.asarray(v) for k, v in benchmark.make_batch(case).items()}
  b, source_length = batch["source"].shape
  target_length = batch["target_outputs"].shape[1]
  model = Seq2Seq(m, case.source_vocab_size, case.target_vocab_size)
  tx = optimizer_lib.make_optimizer(s.train)
  state = steps.create_train_state(model, tx, steps.StepOptions.from_settings(
      s.train), jax.random.PRNGKey(0), source_length, target_length)
  rng = jax.random.PRNGKey(1)
  repeats = args.repeats
  timed = lambda fn: benchmark._median_seconds(fn, repeats)  # pylint: disable=protected-access

  peak = benchmark.run_matmul(4096, 5)["matmul_gflops"]
  print(f"matmul peak {peak:.1f} GFLOP/s; case {args.case}: batch {b}, "
        f"lengths {source_length}/{target_length}")
  total = flops.train_step_flops(m, b, source_length, target_length,
                                 case.target_vocab_size)

  train = jax.jit(steps.train_step)
  jax.block_until_ready(train(state, batch, rng))
  _report("full_step", timed(lambda: train(state, batch, rng)), total, peak)

  def loss(params):
    logits = model.apply({"params": params}, batch["source"],
                         batch["target_inputs"], train=False)
    return metrics_lib.sequence_sums(logits, batch["target_outputs"])[0]

  grad = jax.jit(jax.grad(loss))
  jax.block_until_ready(grad(state.params))
  _report("grad_only", timed(lambda: grad(state.params)), total, peak)
  forward = jax.jit(loss)
  jax.block_until_ready(forward(state.params))
  _report("forward_only", timed(lambda: forward(state.params)), total / 3, peak)

  grads = jax.tree.map(jnp.ones_like, state.params)

  @jax.jit
  def update(params, opt_state):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  jax.block_until_ready(update(state.params, state.opt_state))
  _report("optimizer_only",
          timed(lambda: update(state.params, state.opt_state)), 0, peak)

  layer = RecurrentLayer(m.cell, m.hidden_size,
                         implementation=m.recurrence, remat=m.remat)
  xs = jnp.asarray(np.random.default_rng(0).normal(
      size=(b, source_length, m.embedding_size)), jnp.float32)
  mask = jnp.ones((b, source_length), bool)
  carry = layer.zero_carry(b)
  variables = layer.init(jax.random.PRNGKey(0), carry, xs, mask)
  layer_grad = jax.jit(jax.grad(
      lambda v, x: jnp.sum(layer.apply(v, carry, x, mask)[1] ** 2),
      argnums=(0, 1)))
  jax.block_until_ready(layer_grad(variables, xs))
  gates = {"lstm": 4, "gru": 3, "rnn": 1}[m.cell]
  layer_flops = 3 * 2 * b * source_length * gates * m.hidden_size * (
      m.embedding_size + m.hidden_size)
  _report("encoder_layer", timed(lambda: layer_grad(variables, xs)),
          layer_flops, peak)

  hidden = jnp.asarray(np.random.default_rng(1).normal(
      size=(b, target_length, m.hidden_size)), jnp.float32)
  kernel = jnp.asarray(np.random.default_rng(2).normal(
      size=(m.hidden_size, case.target_vocab_size)) * 0.01, jnp.float32)

  def output_loss(w, h):
    return metrics_lib.sequence_sums(h @ w, batch["target_outputs"])[0]

  output_grad = jax.jit(jax.grad(output_loss, argnums=(0, 1)))
  jax.block_until_ready(output_grad(kernel, hidden))
  _report("output_layer", timed(lambda: output_grad(kernel, hidden)),
          3 * 2 * b * target_length * m.hidden_size * case.target_vocab_size,
          peak)


if __name__ == "__main__":
  main()
