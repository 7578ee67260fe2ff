"""Evaluation of a split: teacher-forced metrics plus greedy decoding."""
from typing import Dict, List, Tuple

import jax
import numpy as np

from seq2seq_jax import metrics as metrics_lib
from seq2seq_jax import steps
from seq2seq_jax.data import pipeline
from seq2seq_jax.data.datasets import Split

Sample = Tuple[str, str, str]  # source, reference, prediction


def evaluate(state, split: Split, *, batch_size: int, source_length: int,
             target_length: int, reverse_source: bool, max_decode_length: int,
             target_vocab, num_samples: int = 0) -> Tuple[Dict[str, float],
                                                          List[Sample]]:
  """Metrics over every example of `split`.

  Returns:
    ({loss, perplexity, token_accuracy, sequence_accuracy (teacher forced),
      greedy_sequence_accuracy (exact match of the greedy decode)},
     the first `num_samples` (source, reference, prediction) triples).
  """
  total = None
  exact, samples, index = 0, [], 0
  for batch in pipeline.eval_batches(split, batch_size, source_length,
                                     target_length, reverse_source):
    device_batch = jax.tree.map(jax.numpy.asarray, batch)
    total = metrics_lib.add(total, steps.jit_eval_step(state, device_batch))
    predictions = np.asarray(steps.jit_greedy_predict(
        state, device_batch["source"], max_length=max_decode_length))
    for row in predictions:
      if index >= len(split):
        break
      hypothesis = target_vocab.decode(row)
      exact += hypothesis == split.target_text[index]
      if len(samples) < num_samples:
        samples.append((split.source_text[index], split.target_text[index],
                        hypothesis))
      index += 1
  results = metrics_lib.finalize(total)
  results["greedy_sequence_accuracy"] = exact / max(len(split), 1)
  return results, samples
