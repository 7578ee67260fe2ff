"""Analytic matmul FLOPs of one seq2seq train step (see `train_step_flops`).

The count follows the model code (models/: encoder.py, decoder.py, attention.py,
bridge.py, recurrent.py) term by term:

  one matmul [m, k] x [k, n]                   2·m·n·k
  recurrent layer, per direction               2·B·L·I·G·H  (input projection)
                                             + 2·B·L·H·G·H  (h @ W_h)
  bridge 'linear', per layer and carry part    2·B·(H·dirs)·H_d
  attention keys (bahdanau, luong_concat)      2·B·S·M·U
  attention, per decoder step                  query projection 2·B·H_d·U
                                               (luong_general: 2·B·H_d·M),
                                               scores 2·B·S·U (additive) or
                                               2·B·S·M (dot, general), context
                                               2·B·S·M; luong_*: the
                                               attentional layer 2·B·(M+H_d)·H_d
  output projection                            2·N·R·V, N = B·T, or the real
                                               (non-padding) positions where
                                               the train step projects only
                                               those (compact_output.py)

B batch, S source and T target length (the padded shapes: the scan executes
padded steps too, masking only selects what it keeps), L the layer's length,
I its input size, H its state size, G the cell's gates (LSTM 4, GRU 3, RNN 1),
H_d the decoder size, M = H·dirs the encoder output size, U = H_d the additive
attention units, R the readout size (H_d, or H_d + M for bahdanau), V the
target vocabulary. The decoder's first-layer input is the embedding (plus the
context for bahdanau, plus the fed vector with input feeding).

A train step is forward + backward, and the backward of a matmul is two
matmuls of the same size (the gradient for each operand), so a step costs
3x the forward count. Elementwise work (gates, tanh, softmax, loss, Adam),
embedding gathers and their scatter-add gradients are ignored: they are
memory-bound, and leaving them out makes the "fraction of peak" a lower bound
on how busy the matmul units are.
"""
from typing import Dict, Optional

import numpy as np

from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.models.cells import get_cell

BACKWARD_FACTOR = 2  # backward matmul FLOPs per forward matmul FLOP


def matmul(m: int, n: int, k: int) -> int:
  """FLOPs of [m, k] x [k, n]: one multiply and one add per term."""
  return 2 * m * n * k


def _recurrent_layer(batch: int, length: int, input_size: int, hidden: int,
                     gates: int) -> int:
  rows = batch * length
  return (matmul(rows, gates * hidden, input_size)
          + matmul(rows, gates * hidden, hidden))


def forward_flops(model: settings_lib.ModelSettings, batch_size: int,
                  source_length: int, target_length: int,
                  target_vocab_size: int,
                  output_rows: Optional[int] = None) -> Dict[str, int]:
  """Forward matmul FLOPs of the teacher-forced model, by component.

  Args:
    model: the model settings.
    batch_size: B.
    source_length, target_length: S and T, padded widths.
    target_vocab_size: V.

  Returns:
    {"encoder", "bridge", "decoder_rnn", "attention", "output_projection"}
    -> FLOPs (0 where a component does no matmul).
  """
  b, s, t = batch_size, source_length, target_length
  gates = get_cell(model.cell).num_gates
  directions = 2 if model.bidirectional else 1
  h, h_d = model.hidden_size, settings_lib.decoder_hidden_size(model)
  memory = h * directions

  encoder = 0
  input_size = model.embedding_size
  for _ in range(model.num_layers):
    encoder += directions * _recurrent_layer(b, s, input_size, h, gates)
    input_size = memory

  bridge = 0
  if model.bridge == "linear":
    carry_parts = len(get_cell(model.cell).zero_carry(1, 1))
    bridge = model.num_layers * carry_parts * matmul(b, h_d, memory)

  first_input = model.embedding_size
  if model.attention == "bahdanau":
    first_input += memory
  if model.input_feeding:
    first_input += h_d
  decoder_rnn = 0
  input_size = first_input
  for _ in range(model.num_layers):
    decoder_rnn += _recurrent_layer(b, t, input_size, h_d, gates)
    input_size = h_d

  attention = 0
  kind = model.attention
  if kind in ("bahdanau", "luong_concat"):
    units = h_d
    per_step = (matmul(b, units, h_d) + matmul(b * s, 1, units)
                + matmul(b, memory, s))
    attention = matmul(b * s, units, memory) + t * per_step
  elif kind in ("luong_dot", "luong_general"):
    per_step = matmul(b * s, 1, memory) + matmul(b, memory, s)
    if kind == "luong_general":
      per_step += matmul(b, memory, h_d)
    attention = t * per_step
  elif kind != "none":
    raise ValueError(f"unknown attention {kind!r}")
  if kind.startswith("luong"):
    attention += t * matmul(b, h_d, memory + h_d)

  readout = h_d + (memory if kind == "bahdanau" else 0)
  rows = b * t if output_rows is None else output_rows
  output_projection = matmul(rows, target_vocab_size, readout)
  return {"encoder": encoder, "bridge": bridge, "decoder_rnn": decoder_rnn,
          "attention": attention, "output_projection": output_projection}


def train_step_flops(model: settings_lib.ModelSettings, batch_size: int,
                     source_length: int, target_length: int,
                     target_vocab_size: int,
                     output_rows: Optional[int] = None) -> int:
  """Matmul FLOPs of one train step: forward x (1 + BACKWARD_FACTOR).
  `output_rows`: the positions the output layer projects (default all B·T;
  the real ones where the train step skips padding, `output_rows_of`)."""
  forward = forward_flops(model, batch_size, source_length, target_length,
                          target_vocab_size, output_rows)
  return (1 + BACKWARD_FACTOR) * sum(forward.values())


def real_rows(target_outputs) -> int:
  """The real (non-padding) target positions of a batch."""
  return int(np.sum(np.asarray(target_outputs) != PAD_ID))


def output_rows_of(target_outputs) -> Optional[int]:
  """The positions the project's train step projects: the real ones where
  `compact_output` applies (None: all of them)."""
  from seq2seq_jax.training import compact_output  # pylint: disable=g-import-not-at-top
  if not compact_output.applies(1.0):
    return None
  return real_rows(target_outputs)
