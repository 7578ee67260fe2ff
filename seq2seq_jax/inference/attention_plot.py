"""Attention heatmaps: which source tokens each target token looked at.

Weights are taken from the decoder's own single-step function while it
re-reads its greedy output, and columns are put back in the original source
order when the run reversed its sources (`data.reverse_source`).
"""
from typing import List, Tuple

import jax.numpy as jnp
import numpy as np

from seq2seq_jax.data.tokenizers import JOINER
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import steps


def attention_matrix(run, text: str) -> Tuple[List[str], List[str], np.ndarray]:
  """Greedy-translates `text` and returns its attention.

  Args:
    run: an `inference.LoadedRun` whose model has attention.
    text: one source sentence.

  Returns:
    (source tokens in original order, target tokens incl. EOS,
     weights [target tokens, source tokens], rows summing to 1).
  """
  if run.settings.model.attention == "none":
    raise ValueError("this run has no attention (config.model.attention="
                     "'none'); there is nothing to plot")
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  source = jnp.asarray(trained_run.encode_sources(run, [text]))
  length = int((source[0] != 0).sum())
  if length == 0:
    raise ValueError("empty input: nothing to plot")
  output = np.asarray(steps.jit_greedy_predict(
      run.state, source, max_length=run.max_decode_length))[0]
  ends = np.nonzero(output == EOS_ID)[0]
  output = output[:ends[0] + 1] if len(ends) else output
  variables = {"params": run.state.params}
  model = run.state.model
  carry = model.apply(variables, source, method=Seq2Seq.encode)
  rows = []
  previous = BOS_ID
  for token in output:
    _, carry = model.apply(variables, carry, jnp.asarray([previous]),
                           method=Seq2Seq.decode_step)
    rows.append(np.asarray(carry["attention"][0, :length]))
    previous = int(token)
  weights = np.stack(rows)
  source_ids = np.asarray(source[0, :length])
  if run.settings.data.reverse_source:  # the model read it backwards
    weights, source_ids = weights[:, ::-1], source_ids[::-1]
  # The word tokenizer's joiner mark (punctuation glued to a word) has no
  # glyph in most fonts: drop it from the labels.
  source_tokens = [run.source_vocab.token(int(i)).replace(JOINER, "")
                   for i in source_ids]
  target_tokens = [run.target_vocab.token(int(i)).replace(JOINER, "")
                   for i in output]
  return source_tokens, target_tokens, weights


def save_heatmap(source_tokens: List[str], target_tokens: List[str],
                 weights: np.ndarray, path: str) -> None:
  """Writes a source x target heatmap as PNG (matplotlib, no display)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  width = max(4.0, 0.45 * len(source_tokens) + 2)
  height = max(3.0, 0.4 * len(target_tokens) + 1.5)
  fig, ax = plt.subplots(figsize=(width, height))
  image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
  ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60,
                ha="right")
  ax.set_yticks(range(len(target_tokens)), target_tokens)
  ax.set_xlabel("source")
  ax.set_ylabel("output")
  fig.colorbar(image, ax=ax, fraction=0.04)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
