"""The fused recurrence (hand-written backward pass) against JAX autodiff of
`nn.scan`: same outputs, same gradients, for every cell, direction, padding
pattern and with rematerialisation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.models.recurrent import RecurrentLayer

BATCH, TIME, FEATURES, HIDDEN = 3, 7, 4, 5


def _loss(layer, mask):
  """A scalar that depends non-linearly on every output and the final carry."""
  def loss(variables, carry0, xs):
    carry, outputs = layer.apply(variables, carry0, xs, mask)
    return (jnp.sum(outputs * jnp.sin(outputs)) +
            sum(jnp.sum(jnp.cos(c)) for c in carry))
  return loss


def _compare(cell_name, mask, reverse=False, remat=False, seed=0):
  """Values and gradients of the fused layer against the autodiff scan on
  random inputs [BATCH, time, FEATURES]; returns the fused ones and the
  layer, the variables and the carry and inputs they were taken at."""
  rng = np.random.default_rng(seed)
  xs = jnp.asarray(rng.normal(size=(BATCH, mask.shape[1], FEATURES)),
                   jnp.float32)
  reference = RecurrentLayer(cell_name, HIDDEN, reverse=reverse,
                             implementation="scan")
  fused = RecurrentLayer(cell_name, HIDDEN, reverse=reverse,
                         implementation="fused", remat=remat)
  carry0 = tuple(jnp.asarray(rng.normal(size=c.shape), jnp.float32)
                 for c in reference.zero_carry(BATCH))
  variables = reference.init(jax.random.PRNGKey(0), carry0, xs, mask)
  # Same parameter tree, so checkpoints move between implementations.
  assert (jax.tree.structure(variables) ==
          jax.tree.structure(fused.init(jax.random.PRNGKey(0), carry0, xs, mask)))
  variables = jax.tree.map(  # non-zero biases, so a dropped term would show
      lambda p: p + 0.1 * jnp.asarray(rng.normal(size=p.shape), jnp.float32),
      variables)
  want = jax.value_and_grad(_loss(reference, mask), argnums=(0, 1, 2))(
      variables, carry0, xs)
  got = jax.jit(jax.value_and_grad(_loss(fused, mask), argnums=(0, 1, 2)))(
      variables, carry0, xs)
  for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
  return got, (fused, variables, carry0, xs)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("remat", [False, True])
def test_fused_matches_autodiff_scan(cell_name, reverse, remat):
  lengths = np.array([TIME, 4, 1])  # full, padded, a single real step
  mask = jnp.asarray(np.arange(TIME)[None] < lengths[:, None])
  got, _ = _compare(cell_name, mask, reverse, remat)
  # Inputs at padded steps get exactly zero gradient.
  d_xs = got[1][2]
  np.testing.assert_array_equal(d_xs[1, 4:], 0.0)
  np.testing.assert_array_equal(d_xs[2, 1:], 0.0)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn"])
def test_one_step_matches_autodiff_scan(cell_name):
  """A length-1 sequence (decoding, the attention decoder's loop) takes the
  direct step, not a scan: same values and gradients, padding included."""
  mask = jnp.asarray([[True], [False], [True]])
  got, (fused, variables, carry0, xs) = _compare(cell_name, mask, seed=1)
  np.testing.assert_array_equal(got[1][2][1], 0.0)  # the padded row's input
  step = jax.make_jaxpr(lambda v: fused.apply(v, carry0, xs, mask))(variables)
  assert "scan" not in str(step) and "while" not in str(step)


def test_unknown_implementation_is_an_error():
  layer = RecurrentLayer("lstm", HIDDEN, implementation="cudnn")
  xs = jnp.zeros((1, 2, FEATURES))
  with pytest.raises(ValueError, match="cudnn.*fused"):
    layer.init(jax.random.PRNGKey(0), layer.zero_carry(1), xs,
               jnp.ones((1, 2), bool))


SMALL = dict(time=5, batch=3, hidden=4)  # distinct sizes, 2 input features


def _small_layer_gradient(cell_name):
  """(gradient of a small layer's summed outputs, its args, gates * hidden)."""
  time, batch, hidden = SMALL["time"], SMALL["batch"], SMALL["hidden"]
  layer = RecurrentLayer(cell_name, hidden)
  inputs = jnp.ones((batch, time, 2))
  mask = jnp.ones((batch, time), bool)
  carry = layer.zero_carry(batch)
  variables = layer.init(jax.random.PRNGKey(0), carry, inputs, mask)
  grad = jax.grad(lambda v, x: jnp.sum(layer.apply(v, carry, x, mask)[1]),
                  argnums=(0, 1))
  gates = hidden * (4 if cell_name == "lstm" else 3)
  return grad, (variables, inputs), gates


@pytest.mark.parametrize("cell_name, stacked", [("lstm", 2), ("gru", 3)])
def test_backward_loop_stacks_a_shared_cotangent_once(cell_name, stacked):
  """An LSTM adds x and h @ W_hh before its gates, so their per-step
  cotangents are one array, stacked once by the backward loop; a GRU's
  differ (its reset gate scales h @ W_hn) and both are stacked. Counted:
  [time, batch, gates * hidden] outputs of the forward and backward loops."""
  grad, args, gates = _small_layer_gradient(cell_name)
  jaxpr = jax.make_jaxpr(grad)(*args)

  def scans(eqns):
    for eqn in eqns:
      if eqn.primitive.name == "scan":
        yield eqn
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
          inner = getattr(sub, "jaxpr", None)
          if inner is not None:
            yield from scans(getattr(inner, "eqns", []))

  outputs = [v.aval.shape for eqn in scans(jaxpr.eqns) for v in eqn.outvars]
  assert outputs.count((SMALL["time"], SMALL["batch"], gates)) == stacked, (
      outputs)


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_backward_loop_contracts_the_recurrent_kernel_without_transposing_it(
    cell_name):
  """dh = d_hidden @ W_hh^T contracts W_hh's gate axis in place: no
  transposed [gates * hidden, hidden] copy of the kernel is made (XLA:CPU
  materialized it once per call, and the per-step product was no faster)."""
  grad, args, gates = _small_layer_gradient(cell_name)
  hlo = jax.jit(grad).lower(*args).compile().as_text()
  assert f"f32[{gates},{SMALL['hidden']}]" not in hlo
