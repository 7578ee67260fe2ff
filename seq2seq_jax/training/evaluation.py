"""Evaluation of a split: teacher-forced metrics plus greedy decoding."""
from typing import Dict, List, Optional, Tuple

import jax

from seq2seq_jax.data import pipeline
from seq2seq_jax.data.corpus import Split
from seq2seq_jax.inference import text_metrics
from seq2seq_jax.training import losses
from seq2seq_jax.training import partitioning
from seq2seq_jax.training import steps

Sample = Tuple[str, str, str]  # source, reference, prediction


def _to_devices(batch, mesh):
  """Split over the mesh when there is one, else onto the default device."""
  if mesh is None:
    return jax.tree.map(jax.numpy.asarray, batch)
  return partitioning.shard_batch(batch, mesh)


def decode_split(state, split: Split, *, batch_size: int, source_length: int,
                 target_length: int, reverse_source: bool,
                 max_decode_length: int, target_vocab,
                 limit: Optional[int] = None, mesh=None) -> List[str]:
  """Greedy hypotheses (detokenized text) for the first `limit` examples.

  With a `mesh` (the training state's), each batch is split over its devices
  and hosts (`batch_size` must divide evenly) and gathered back.
  """
  hypotheses = []
  total = len(split) if limit is None else min(limit, len(split))
  for batch in pipeline.eval_batches(split, batch_size, source_length,
                                     target_length, reverse_source, total):
    predictions = partitioning.to_host(steps.jit_greedy_predict(
        state, _to_devices(batch, mesh)["source"], max_length=max_decode_length))
    hypotheses.extend(target_vocab.decode(row) for row in predictions)
  return hypotheses[:total]


def evaluate(state, split: Split, *, batch_size: int, source_length: int,
             target_length: int, reverse_source: bool, max_decode_length: int,
             target_vocab, num_samples: int = 0, is_text: bool = False,
             decode_limit: Optional[int] = None, mesh=None
             ) -> Tuple[Dict[str, float], List[Sample], List[str]]:
  """Metrics over `split`.

  Returns:
    ({loss, perplexity, token_accuracy, sequence_accuracy (teacher forced over
      every example), and from the greedy decode of the first `decode_limit`
      examples either bleu, bleu_lowercase, chrf (text) or
      greedy_sequence_accuracy (exact match, synthetic tasks)},
     the first `num_samples` (source, reference, prediction) triples,
     the greedy hypotheses behind the scores, in split order).
  """
  total = None
  for batch in pipeline.eval_batches(split, batch_size, source_length,
                                     target_length, reverse_source):
    total = losses.add(
        total, steps.jit_eval_step(state, _to_devices(batch, mesh)))
  results = losses.finalize(total)
  hypotheses = decode_split(
      state, split, batch_size=batch_size, source_length=source_length,
      target_length=target_length, reverse_source=reverse_source,
      max_decode_length=max_decode_length, target_vocab=target_vocab,
      limit=decode_limit, mesh=mesh)
  references = split.target_text[:len(hypotheses)]
  if is_text:
    results.update(text_metrics.corpus_scores(hypotheses, references))
  else:
    exact = sum(h == r for h, r in zip(hypotheses, references))
    results["greedy_sequence_accuracy"] = exact / max(len(hypotheses), 1)
  samples = list(zip(split.source_text, references, hypotheses))[:num_samples]
  return results, samples, hypotheses
