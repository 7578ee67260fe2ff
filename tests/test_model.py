"""The full encoder-decoder: padding invariance, step == sequence, bridges."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.models.seq2seq import Seq2Seq
from tests.conftest import SOURCE, TARGET, tiny_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional,bridge", [(False, "copy"),
                                                  (True, "linear")])
def test_source_padding_changes_no_output(cell, bidirectional, bridge):
  model = tiny_model(cell, bidirectional, bridge)
  variables = model.init(jax.random.PRNGKey(0), SOURCE, TARGET)
  logits = model.apply(variables, SOURCE, TARGET)
  padded = np.concatenate([SOURCE, np.zeros((2, 3), np.int32)], axis=1)
  np.testing.assert_allclose(model.apply(variables, padded, TARGET), logits,
                             rtol=1e-6, atol=1e-6)
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  carry_padded = model.apply(variables, padded, method=Seq2Seq.encode)
  for a, b in zip(jax.tree.leaves(carry["layers"]),
                  jax.tree.leaves(carry_padded["layers"])):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_target_padding_changes_no_real_logit():
  model = tiny_model()
  variables = model.init(jax.random.PRNGKey(0), SOURCE, TARGET)
  logits = model.apply(variables, SOURCE, TARGET)
  longer = np.concatenate([TARGET, np.zeros((2, 2), np.int32)], axis=1)
  np.testing.assert_allclose(model.apply(variables, SOURCE, longer)[:, :4],
                             logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_decode_step_equals_teacher_forced_sequence(cell):
  model = tiny_model(cell)
  variables = model.init(jax.random.PRNGKey(1), SOURCE, TARGET)
  logits = model.apply(variables, SOURCE, TARGET)
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  for t in range(TARGET.shape[1]):
    step_logits, carry = model.apply(variables, carry, TARGET[:, t],
                                     method=Seq2Seq.decode_step)
    np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)


def test_copy_bridge_starts_decoder_from_encoder_state():
  model = tiny_model("lstm", layers=1)
  variables = model.init(jax.random.PRNGKey(2), SOURCE, TARGET)
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  encoder_out, states = model.apply(
      variables, SOURCE, SOURCE != 0, train=False,
      method=lambda m, s, mask, train: m.encoder(s, mask, train=train))
  (c, h), = states[0]
  np.testing.assert_array_equal(carry["layers"][0][0], c)  # both c and h
  np.testing.assert_array_equal(carry["layers"][0][1], h)
  # h of the last real token for the padded row.
  np.testing.assert_array_equal(h[1], encoder_out[1, 1])


def test_zero_bridge_ignores_the_source():
  model = tiny_model("gru", bridge="zero", layers=1)
  variables = model.init(jax.random.PRNGKey(3), SOURCE, TARGET)
  other_source = SOURCE[::-1]
  np.testing.assert_array_equal(model.apply(variables, SOURCE, TARGET),
                                model.apply(variables, other_source, TARGET))


def test_linear_bridge_handles_other_decoder_size():
  model = tiny_model("lstm", bidirectional=True, bridge="linear",
                     decoder_hidden_size=20)
  variables = model.init(jax.random.PRNGKey(4), SOURCE, TARGET)
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  assert carry["layers"][0][0].shape == (2, 20)
  assert carry["memory"].shape == (2, 4, 24)
  assert model.apply(variables, SOURCE, TARGET).shape == (2, 4, 17)


def test_scheduled_sampling_with_full_forcing_equals_teacher_forcing():
  model = tiny_model("gru")
  variables = model.init(jax.random.PRNGKey(5), SOURCE, TARGET)
  forced = model.apply(variables, SOURCE, TARGET)
  # teacher_forcing just below 1 with an RNG that draws all-gold coins would
  # be flaky; instead check the sampled path at p=1-eps feeds gold at step 0
  # and matches teacher forcing there.
  sampled = model.apply(variables, SOURCE, TARGET, teacher_forcing=0.0,
                        rngs={"sampling": jax.random.PRNGKey(0)})
  np.testing.assert_allclose(sampled[:, 0], forced[:, 0], rtol=1e-5, atol=1e-5)
  # With p=0 every later input is the model's own argmax: rerun greedily.
  carry = model.apply(variables, SOURCE, method=Seq2Seq.encode)
  tokens = TARGET[:, 0]
  for t in range(TARGET.shape[1]):
    logits, carry = model.apply(variables, carry, tokens,
                                method=Seq2Seq.decode_step)
    np.testing.assert_allclose(sampled[:, t], logits, rtol=1e-5, atol=1e-5)
    tokens = jnp.argmax(logits, -1).astype(jnp.int32)
