"""The PyTorch reference models for the side-by-side benchmark.

Each is the project's model written the way a PyTorch user writes it at its
fastest: `nn.LSTM` / `nn.GRU` over the whole sequence (oneDNN on CPU, cuDNN
on GPU) for the plain encoder-decoder, packed sequences for padded sources,
and for Bahdanau attention a per-step loop over `nn.GRUCell` with the memory
projection computed once and batched `bmm` for the context, the output layer
applied once to all steps' readouts after the loop. Loss: mean token
cross-entropy over non-padding targets; Adam with global-norm clipping 1.0,
as configs/default.py.

`load_project_params` copies the project's parameters into a reference model
so `compare_pytorch.py` can check both compute the same loss and gradients
before it times them. Layouts: the project's kernels are [in, out] (PyTorch's
weights are [out, in]); both order LSTM gates i, f, g, o and GRU gates r, z,
n with the reset applied after the recurrent product, so the gate blocks map
one to one. The project's LSTM has no recurrent bias (PyTorch's `bias_hh` is
set to zero) and applies the GRU's recurrent bias as PyTorch does.
"""
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PAD_ID = 0


class Seq2Seq(nn.Module):
  """Embedding -> RNN encoder -> (copy | linear bridge) -> RNN decoder -> Linear.

  Args:
    cell: "lstm" or "gru".
    source_vocab, target_vocab, embedding, hidden, num_layers: sizes.
    dropout: on embeddings, between layers and before the output layer.
    bidirectional: a right-to-left encoder per layer (needs bridge="linear").
    bridge: "copy" or "linear" (tanh on h, none on an LSTM's c).
    attention: "none" or "bahdanau" (GRU, one layer: a per-step loop).
    decoder_hidden: the decoder's size (0: `hidden`).
  """

  def __init__(self, cell: str, source_vocab: int, target_vocab: int,
               embedding: int, hidden: int, num_layers: int = 1,
               dropout: float = 0.0, bidirectional: bool = False,
               bridge: str = "copy", attention: str = "none",
               decoder_hidden: int = 0):
    super().__init__()
    self.cell, self.attention, self.bridge_kind = cell, attention, bridge
    self.num_layers, self.hidden = num_layers, hidden
    self.decoder_hidden = decoder_hidden or hidden
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
    self.source_embedding = nn.Embedding(source_vocab, embedding)
    self.target_embedding = nn.Embedding(target_vocab, embedding)
    self.encoder = rnn(embedding, hidden, num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0,
                       bidirectional=bidirectional)
    directions = 2 if bidirectional else 1
    memory = hidden * directions
    if bridge == "linear":
      parts = 2 if cell == "lstm" else 1
      self.bridge = nn.ModuleList(nn.ModuleList(
          nn.Linear(memory, self.decoder_hidden) for _ in range(parts))
                                  for _ in range(num_layers))
    self.dropout = nn.Dropout(dropout)
    if attention == "bahdanau":
      if cell != "gru" or num_layers != 1:
        raise ValueError("the attention reference is a one-layer GRU")
      units = self.decoder_hidden
      self.memory_projection = nn.Linear(memory, units, bias=False)
      self.query_projection = nn.Linear(self.decoder_hidden, units)
      self.score_vector = nn.Linear(units, 1, bias=False)
      self.decoder_cell = nn.GRUCell(embedding + memory, self.decoder_hidden)
      readout = self.decoder_hidden + memory
    else:
      self.decoder = rnn(embedding, self.decoder_hidden, num_layers,
                         batch_first=True,
                         dropout=dropout if num_layers > 1 else 0.0)
      readout = self.decoder_hidden
    self.output = nn.Linear(readout, target_vocab)

  def encode(self, source: torch.Tensor):
    """(memory [B, S, H * directions], initial decoder state)."""
    lengths = (source != PAD_ID).sum(1)
    embedded = self.dropout(self.source_embedding(source))
    if bool((lengths == source.shape[1]).all()):
      memory, state = self.encoder(embedded)
    else:
      packed = nn.utils.rnn.pack_padded_sequence(
          embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
      memory, state = self.encoder(packed)
      memory, _ = nn.utils.rnn.pad_packed_sequence(
          memory, batch_first=True, total_length=source.shape[1])
    return memory, self._bridge(state)

  def _bridge(self, state):
    parts = state if self.cell == "lstm" else (state,)  # (h, c) or (h,)
    if self.bridge_kind == "copy":
      return state
    out = []
    for index, part in enumerate(parts):
      # [layers * directions, B, H] -> per layer [B, H * directions]
      joined = part.view(self.num_layers, -1, part.shape[1], part.shape[2])
      joined = torch.cat(list(joined.unbind(1)), dim=-1)
      projected = torch.stack([self.bridge[layer][index](joined[layer])
                               for layer in range(self.num_layers)])
      is_h = index == 0  # PyTorch's LSTM state is (h, c)
      out.append(torch.tanh(projected) if is_h else projected)
    return tuple(out) if self.cell == "lstm" else out[0]

  def forward(self, source: torch.Tensor, target_inputs: torch.Tensor):
    """Teacher-forced logits [B, T, V]."""
    return self.output(self.readouts(source, target_inputs))

  def readouts(self, source: torch.Tensor, target_inputs: torch.Tensor):
    """Teacher-forced readouts [B, T, R]: what the output layer projects."""
    memory, state = self.encode(source)
    embedded = self.dropout(self.target_embedding(target_inputs))
    if self.attention == "none":
      outputs, _ = self.decoder(embedded, state)
      readouts = self.dropout(outputs)
    else:
      readouts = self._attend_all(memory, source != PAD_ID, embedded, state[0])
    return readouts

  def _attend_all(self, memory, mask, embedded, h):
    keys = self.memory_projection(memory)  # once per sentence
    readouts = []
    for t in range(embedded.shape[1]):
      context = self._context(h, keys, memory, mask)
      h = self.decoder_cell(torch.cat([embedded[:, t], context], -1), h)
      readouts.append(torch.cat([h, context], -1))
    return self.dropout(torch.stack(readouts, 1))

  def _context(self, query, keys, memory, mask):
    hidden = torch.tanh(keys + self.query_projection(query)[:, None])
    scores = self.score_vector(hidden)[..., 0].masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, -1) * mask
    return torch.bmm(weights[:, None], memory)[:, 0]

  @torch.inference_mode()
  def greedy(self, source: torch.Tensor, max_length: int, bos_id: int):
    """Greedy decoding, one `nn.LSTM`/`nn.GRU` step at a time, to max_length
    (no early stop: the benchmark times full-length work on both sides)."""
    if self.attention != "none":
      raise ValueError("greedy decoding is benchmarked for plain models")
    _, state = self.encode(source)
    tokens = torch.full((source.shape[0], 1), bos_id, dtype=torch.long)
    out = []
    for _ in range(max_length):
      output, state = self.decoder(self.target_embedding(tokens), state)
      logits = self.output(output[:, 0])
      logits[:, :2] = -float("inf")  # never PAD or BOS, as the project
      tokens = logits.argmax(-1, keepdim=True)
      out.append(tokens)
    return torch.cat(out, 1)


def loss_fn(model: Seq2Seq, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
  """Mean token cross-entropy over the real (non-padding) positions. With
  padding, the output layer projects only those (boolean indexing), as the
  project's train step does on CPU (training/compact_output.py)."""
  targets = batch["target_outputs"]
  readouts = model.readouts(batch["source"], batch["target_inputs"])
  real = targets != PAD_ID
  if bool(real.all()):
    logits = model.output(readouts)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           targets.reshape(-1))
  return F.cross_entropy(model.output(readouts[real]), targets[real])


def make_optimizer(model: nn.Module, learning_rate: float):
  """Adam; the fused CPU/GPU kernel where this PyTorch has one."""
  try:
    return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=True)
  except (RuntimeError, TypeError, ValueError):
    return torch.optim.Adam(model.parameters(), lr=learning_rate, foreach=True)


def train_step(model, optimizer, batch, clip_norm: float = 1.0) -> torch.Tensor:
  optimizer.zero_grad(set_to_none=True)
  loss = loss_fn(model, batch)
  loss.backward()
  torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
  optimizer.step()
  return loss


# --- the project's parameters in the reference's layout ----------------------

def _t(array) -> torch.Tensor:
  return torch.from_numpy(np.array(array, np.float32))


def _rnn_layer(layer_params) -> Tuple[torch.Tensor, ...]:
  """(weight_ih, weight_hh, bias_ih, bias_hh) of one project layer."""
  kernel = layer_params["input_projection"]["kernel"]
  bias = layer_params["input_projection"]["bias"]
  cell = layer_params["scan"]["cell"]
  recurrent = cell["recurrent_kernel"]
  recurrent_bias = cell.get("recurrent_bias", np.zeros(recurrent.shape[1]))
  return (_t(kernel).T, _t(recurrent).T, _t(bias), _t(recurrent_bias))


def parameter_map(model: Seq2Seq, params) -> Dict[str, torch.Tensor]:
  """{reference parameter name: value} from the project's params tree."""
  encoder, decoder = params["encoder"], params["decoder"]
  values = {"source_embedding.weight": _t(encoder["embedding"]["embedding"]),
            "target_embedding.weight": _t(decoder["embedding"]["embedding"]),
            "output.weight": _t(decoder["output_projection"]["kernel"]).T,
            "output.bias": _t(decoder["output_projection"]["bias"])}
  names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
  for layer in range(model.num_layers):
    directions = [("forward", "")]
    if model.encoder.bidirectional:
      directions.append(("backward", "_reverse"))
    for project, suffix in directions:
      for name, value in zip(names, _rnn_layer(
          encoder[f"layer_{layer}_{project}"])):
        values[f"encoder.{name}_l{layer}{suffix}"] = value
    if model.attention == "none":
      for name, value in zip(names, _rnn_layer(decoder[f"layers_{layer}"])):
        values[f"decoder.{name}_l{layer}"] = value
    if model.bridge_kind == "linear":
      parts = 2 if model.cell == "lstm" else 1
      for index in range(parts):
        # The project's carry is (c, h) for an LSTM, PyTorch's (h, c).
        project_index = (parts - 1 - index)
        dense = params["bridge"][f"layer_{layer}_state_{project_index}"]
        values[f"bridge.{layer}.{index}.weight"] = _t(dense["kernel"]).T
        values[f"bridge.{layer}.{index}.bias"] = _t(dense["bias"])
  if model.attention == "bahdanau":
    attend = decoder["attend"]
    values["memory_projection.weight"] = _t(
        attend["memory_projection"]["kernel"]).T
    values["query_projection.weight"] = _t(
        attend["query_projection"]["kernel"]).T
    values["query_projection.bias"] = _t(attend["query_projection"]["bias"])
    values["score_vector.weight"] = _t(attend["score_vector"]["kernel"]).T
    for name, value in zip(names, _rnn_layer(decoder["layers_0"])):
      values[f"decoder_cell.{name}"] = value
  return values


def load_project_params(model: Seq2Seq, params) -> None:
  """Sets every reference parameter from the project's (numpy) params."""
  values = parameter_map(model, params)
  own = dict(model.named_parameters())
  missing = sorted(set(own) - set(values))
  extra = sorted(set(values) - set(own))
  if missing or extra:
    raise ValueError(f"parameter maps differ: missing {missing}, extra {extra}")
  with torch.no_grad():
    for name, parameter in own.items():
      if tuple(parameter.shape) != tuple(values[name].shape):
        raise ValueError(f"{name}: reference {tuple(parameter.shape)}, "
                         f"project {tuple(values[name].shape)}")
      parameter.copy_(values[name])
