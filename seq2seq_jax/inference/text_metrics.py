"""Corpus BLEU and chrF with sacrebleu, on detokenized text.

`bleu` and `chrf` are sacrebleu's defaults (13a tokenization, mixed case) on
the detokenized hypotheses against the raw references: the comparable,
reportable figure. `bleu_lowercase` is the same BLEU computed case-
insensitively, the variant closest to papers and tutorials that lowercase
before scoring (e.g. the Multi30k anchors); report it beside, not instead.
"""
from typing import Dict, Sequence

import sacrebleu


def corpus_scores(hypotheses: Sequence[str],
                  *references: Sequence[str]) -> Dict[str, float]:
  """{'bleu', 'bleu_lowercase', 'chrf'} over a corpus.

  Args:
    hypotheses: one per sentence.
    *references: one or more reference streams, each one per sentence.
  """
  if not references:
    raise ValueError("no references to score against")
  for stream in references:
    if len(stream) != len(hypotheses):
      raise ValueError(f"{len(hypotheses)} hypotheses for {len(stream)} "
                       "references")
  refs = [list(stream) for stream in references]
  return {
      "bleu": sacrebleu.corpus_bleu(hypotheses, refs).score,
      "bleu_lowercase": sacrebleu.corpus_bleu(hypotheses, refs,
                                              lowercase=True).score,
      "chrf": sacrebleu.corpus_chrf(hypotheses, refs).score,
  }
