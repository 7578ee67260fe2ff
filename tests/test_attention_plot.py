"""Attention heatmaps: the matrix against the decoder's own weights, columns
in the original source order when the run reversed its sources, the PNG."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data import synthetic
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, CharVocabulary
from seq2seq_jax.inference import attention_plot
from seq2seq_jax.inference.trained_run import LoadedRun
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps

TEXT = "12+345"


def _run(reverse_source: bool, attention: str = "bahdanau") -> LoadedRun:
  """An untrained attention model behind the interface a workdir gives."""
  config = smoke.get_config()
  config.model.attention = attention
  config.data.reverse_source = reverse_source
  s = settings_lib.from_config(config)
  vocab = CharVocabulary(synthetic.alphabet(
      synthetic.TaskSpec(task="addition", min_length=1, max_length=3,
                         num_symbols=10, num_train=1, num_validation=1,
                         num_test=1, seed=0)))
  model = Seq2Seq(s.model, vocab.size, vocab.size)
  state = steps.create_train_state(
      model, optimizer_lib.make_optimizer(s.train), steps.StepOptions(),
      jax.random.PRNGKey(0), 8, 6)
  return LoadedRun(settings=s, state=state, source_vocab=vocab,
                   target_vocab=vocab, source_length=8, max_decode_length=6,
                   step=0)


def _decoder_weights(run: LoadedRun, source_ids, output) -> np.ndarray:
  """[output tokens, source positions] attention, as the model read them."""
  variables = {"params": run.state.params}
  model = run.state.model
  source = jnp.asarray([list(source_ids) + [0] * (8 - len(source_ids))])
  carry = model.apply(variables, source, method=Seq2Seq.encode)
  rows, previous = [], BOS_ID
  for token in output:
    _, carry = model.apply(variables, carry, jnp.asarray([previous]),
                           method=Seq2Seq.decode_step)
    rows.append(np.asarray(carry["attention"][0, :len(source_ids)]))
    previous = token
  return np.stack(rows)


@pytest.mark.parametrize("reverse_source", [False, True])
def test_columns_follow_the_original_source_order(reverse_source):
  run = _run(reverse_source)
  source_tokens, target_tokens, weights = attention_plot.attention_matrix(
      run, TEXT)
  assert source_tokens == list(TEXT)  # original order, reversed or not
  assert weights.shape == (len(target_tokens), len(TEXT))
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
  ids = run.source_vocab.encode(TEXT)
  read = ids[::-1] if reverse_source else ids  # what the encoder saw
  source = jnp.asarray([list(read) + [0] * (8 - len(read))])
  output = list(np.asarray(steps.jit_greedy_predict(
      run.state, source, max_length=6))[0])
  if EOS_ID in output:
    output = output[:output.index(EOS_ID) + 1]
  assert len(output) == len(target_tokens)
  raw = _decoder_weights(run, read, [int(t) for t in output])
  # Column j is source token j: the model's last position is the first
  # token when the source was reversed.
  want = raw[:, ::-1] if reverse_source else raw
  np.testing.assert_allclose(weights, want, rtol=1e-5, atol=1e-7)
  assert np.ptp(raw) > 1e-3  # an untrained model still weights unevenly


def test_a_run_without_attention_is_refused():
  run = _run(False, attention="none")
  with pytest.raises(ValueError, match="no attention"):
    attention_plot.attention_matrix(run, TEXT)


def test_heatmap_is_written_as_png(tmp_path):
  path = tmp_path / "attention.png"
  attention_plot.save_heatmap(["a", "b"], ["x", "y", "z"],
                              np.full((3, 2), 0.5), str(path))
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
