"""Attention: scores against NumPy, masked weights, padding invariance,
step == sequence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.models.attention import Attention
from seq2seq_jax.models.seq2seq import Seq2Seq
from tests.conftest import SOURCE, TARGET, tiny_model

KINDS = ["bahdanau", "luong_dot", "luong_general", "luong_concat"]


@pytest.mark.parametrize("kind", KINDS)
def test_padded_positions_get_exactly_zero_weight(kind):
  rng = np.random.default_rng(0)
  memory = jnp.asarray(rng.normal(size=(3, 5, 4)), jnp.float32)
  query = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
  mask = jnp.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
  attention = Attention(kind, units=6, memory_size=4)
  variables = attention.init(
      jax.random.PRNGKey(0), query, memory, mask,
      method=lambda module, q, m, k: module(q, module.keys(m), m, k))
  keys = attention.apply(variables, memory, method=Attention.keys)
  context, weights = attention.apply(variables, query, keys, memory, mask)
  np.testing.assert_array_equal(weights[0, 3:], 0.0)
  np.testing.assert_allclose(weights[:2].sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(weights[2], 0.0)  # an all-padding row
  np.testing.assert_array_equal(context[2], 0.0)
  np.testing.assert_allclose(context, jnp.einsum("bs,bsd->bd", weights, memory),
                             rtol=1e-6, atol=1e-6)
  # Garbage in the padded memory changes nothing.
  noisy = memory.at[0, 3:].set(1e3)
  noisy_keys = attention.apply(variables, noisy, method=Attention.keys)
  context2, weights2 = attention.apply(variables, query, noisy_keys, noisy, mask)
  np.testing.assert_allclose(context2[0], context[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(weights2[0], weights[0], rtol=1e-6, atol=1e-6)


def test_dot_scores_are_plain_inner_products():
  memory = jnp.asarray([[[1.0, 0.0], [0.0, 1.0]]])
  query = jnp.asarray([[2.0, 0.0]])
  mask = jnp.ones((1, 2), bool)
  attention = Attention("luong_dot", units=2, memory_size=2)
  _, weights = attention.apply({}, query, memory, memory, mask)
  e = np.exp([2.0, 0.0])
  np.testing.assert_allclose(weights[0], e / e.sum(), rtol=1e-6)


def _masked_softmax(scores, mask):
  """NumPy reference: softmax over the real positions, 0.0 at padding."""
  scores = np.where(mask, scores, -np.inf)
  top = np.max(scores, axis=-1, keepdims=True)
  e = np.where(mask, np.exp(scores - np.where(np.isfinite(top), top, 0.0)), 0.0)
  total = e.sum(-1, keepdims=True)
  return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _init_and_attend(kind, query, memory, mask):
  """Initialises an Attention and applies it; returns its params and output."""
  attention = Attention(kind, units=6, memory_size=memory.shape[-1])
  variables = attention.init(
      jax.random.PRNGKey(1), query, memory, mask,
      method=lambda module, q, m, k: module(q, module.keys(m), m, k))
  keys = attention.apply(variables, memory, method=Attention.keys)
  context, weights = attention.apply(variables, query, keys, memory, mask)
  params = jax.tree.map(np.asarray, variables["params"])
  return params, np.asarray(context), np.asarray(weights)


# Query and memory sizes differ (3 vs 4), so a transposed kernel cannot pass.
_QUERY = np.random.default_rng(2).normal(size=(3, 3)).astype(np.float32)
_MEMORY = np.random.default_rng(3).normal(size=(3, 5, 4)).astype(np.float32)
_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)


@pytest.mark.parametrize("kind", ["bahdanau", "luong_concat"])
def test_additive_scores_match_numpy(kind):
  params, context, weights = _init_and_attend(kind, jnp.asarray(_QUERY),
                                              jnp.asarray(_MEMORY),
                                              jnp.asarray(_MASK))
  w_m = params["memory_projection"]["kernel"]  # [memory, units]
  w_q = params["query_projection"]["kernel"]  # [query, units]
  b_q = params["query_projection"]["bias"]
  v = params["score_vector"]["kernel"][:, 0]  # [units]
  # v . tanh(W_m m + W_q q + b)
  hidden = np.tanh(_MEMORY @ w_m + (_QUERY @ w_q + b_q)[:, None, :])
  want = _masked_softmax(hidden @ v, _MASK)
  np.testing.assert_allclose(weights, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(weights[~_MASK], 0.0)
  np.testing.assert_allclose(context, np.einsum("bs,bsd->bd", want, _MEMORY),
                             rtol=1e-5, atol=1e-6)
  assert weights[2, 0] == pytest.approx(1.0)  # one real token takes it all


def test_luong_general_scores_match_numpy():
  params, context, weights = _init_and_attend(
      "luong_general", jnp.asarray(_QUERY), jnp.asarray(_MEMORY),
      jnp.asarray(_MASK))
  kernel = params["general_kernel"]["kernel"]  # [query, memory]
  assert kernel.shape == (3, 4)
  # m . (W q), i.e. q^T W m with W stored as Flax's [in, out] kernel.
  scores = np.einsum("bsd,bd->bs", _MEMORY, _QUERY @ kernel)
  want = _masked_softmax(scores, _MASK)
  np.testing.assert_allclose(weights, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(weights[~_MASK], 0.0)
  np.testing.assert_allclose(context, np.einsum("bs,bsd->bd", want, _MEMORY),
                             rtol=1e-5, atol=1e-6)
  # The weights are far from uniform, so a wrong score would show.
  assert np.ptp(want[1]) > 0.05


@pytest.mark.parametrize("kind,cell,bidirectional,feeding", [
    ("bahdanau", "gru", True, False),
    ("luong_dot", "lstm", False, False),
    ("luong_general", "rnn", True, True),
    ("luong_concat", "lstm", False, True),
])
def test_attention_model_padding_invariance_and_step(kind, cell, bidirectional,
                                                     feeding):
  model = tiny_model(cell, bidirectional, "linear" if bidirectional else "copy",
                     attention=kind, input_feeding=feeding)
  variables = model.init(jax.random.PRNGKey(0), SOURCE, TARGET)
  logits = model.apply(variables, SOURCE, TARGET)
  padded = np.concatenate([SOURCE, np.zeros((2, 3), np.int32)], axis=1)
  np.testing.assert_allclose(model.apply(variables, padded, TARGET), logits,
                             rtol=1e-5, atol=1e-5)
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  for t in range(TARGET.shape[1]):
    step_logits, carry = model.apply(variables, carry, TARGET[:, t],
                                     method=Seq2Seq.decode_step)
    np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)
    weights = carry["attention"]
    np.testing.assert_array_equal(weights[1, 2:], 0.0)  # row 1 has 2 tokens
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bahdanau", "luong_concat"])
def test_decoder_loop_keeps_no_per_step_copy_of_the_additive_tanh(kind):
  """The gradient of a loop of additive attention recomputes each step's
  [batch, source, units] tanh instead of storing it: no loop output of shape
  [steps, batch, source, units]."""
  steps, batch, source, units = 3, 2, 5, 7
  rng = np.random.default_rng(0)
  memory = jnp.asarray(rng.normal(size=(batch, source, 4)), jnp.float32)
  mask = jnp.ones((batch, source), bool)
  attention = Attention(kind, units=units, memory_size=4)
  variables = attention.init(
      jax.random.PRNGKey(0), memory[:, 0], memory, mask,
      method=lambda module, q, m, k: module(q, module.keys(m), m, k))

  def loss(variables, memory):
    keys = attention.apply(variables, memory, method=Attention.keys)

    def step(query, _):
      context, _ = attention.apply(variables, query, keys, memory, mask)
      return jnp.tanh(context), None
    return jnp.sum(jax.lax.scan(step, memory[:, 0], None, length=steps)[0])

  grads = jax.grad(loss, argnums=(0, 1))(variables, memory)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(variables, memory)
  shapes = [v.aval.shape for eqn in jaxpr.eqns if eqn.primitive.name == "scan"
            for v in eqn.outvars]
  assert shapes, "expected the forward and backward loops"
  assert (steps, batch, source, units) not in shapes, shapes
