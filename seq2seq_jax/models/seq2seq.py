"""The encoder-decoder model (Sutskever et al. 2014; Cho et al. 2014).

Pure-functional: build with `Seq2Seq(...)`, then `model.init` / `model.apply`.
Inference uses `encode` once and `decode_step` per token, through
`model.apply(variables, ..., method=...)`; the decoding carry is a plain pytree
(layer carries plus the encoder memory, which attention will read) so search
code can tile and reorder it without knowing the model.
"""
import flax.linen as nn
import jax

from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.models.bridge import Bridge
from seq2seq_jax.models.decoder import DecodeCarry, Decoder, tied_embedding_init
from seq2seq_jax.models.encoder import Encoder


class Seq2Seq(nn.Module):
  """RNN encoder-decoder.

  Attributes:
    model: model settings (cell, sizes, bridge, dropout).
    source_vocab_size, target_vocab_size: vocabulary sizes.
  """
  model: settings_lib.ModelSettings
  source_vocab_size: int
  target_vocab_size: int

  def setup(self):
    m = self.model
    shared = None
    if m.tie_embeddings == "all":
      if self.source_vocab_size != self.target_vocab_size:
        raise ValueError(
            "model.tie_embeddings='all' needs one vocabulary for both sides; "
            f"the source has {self.source_vocab_size} ids, the target "
            f"{self.target_vocab_size}")
      shared = nn.Embed(self.target_vocab_size, m.embedding_size,
                        embedding_init=tied_embedding_init(m.embedding_size))
      self.shared_embedding = shared
    self.encoder = Encoder(
        vocab_size=self.source_vocab_size, embedding_size=m.embedding_size,
        hidden_size=m.hidden_size, num_layers=m.num_layers, cell_name=m.cell,
        bidirectional=m.bidirectional, dropout=m.dropout,
        recurrence=m.recurrence, remat=m.remat, shared_embedding=shared)
    decoder_size = settings_lib.decoder_hidden_size(m)
    self.bridge = Bridge(m.bridge, m.cell, decoder_size)
    self.decoder = Decoder(
        vocab_size=self.target_vocab_size, embedding_size=m.embedding_size,
        hidden_size=decoder_size, num_layers=m.num_layers, cell_name=m.cell,
        dropout=m.dropout, attention=m.attention,
        input_feeding=m.input_feeding, recurrence=m.recurrence, remat=m.remat,
        memory_size=settings_lib.encoder_output_size(m),
        tie_embeddings=m.tie_embeddings != "none",
        readout_size=settings_lib.readout_size(m), shared_embedding=shared)

  def __call__(self, source: jax.Array, target_inputs: jax.Array, *,
               train: bool = False, teacher_forcing: float = 1.0) -> jax.Array:
    """Training / scoring forward pass.

    Args:
      source: [batch, source_length] ids, 0 = padding.
      target_inputs: [batch, target_length] ids (BOS + target, padded).
      train: enables dropout (needs the 'dropout' RNG).
      teacher_forcing: see `Decoder.__call__`.

    Returns:
      logits: [batch, target_length, target_vocab].
    """
    carry = self.encode(source, train=train)
    return self.decoder(carry, target_inputs, train=train,
                        teacher_forcing=teacher_forcing)

  def features(self, source: jax.Array, target_inputs: jax.Array, *,
               train: bool = False) -> jax.Array:
    """Teacher-forced readouts [batch, target_length, readout_size]: the
    forward pass up to the output layer (`__call__` is `output_layer` of
    these), so a loss can project only the positions it needs."""
    carry = self.encode(source, train=train)
    return self.decoder.features(carry, target_inputs, train=train)

  def output_layer(self, readouts: jax.Array) -> jax.Array:
    """[n, readout_size] -> logits [n, target_vocab]."""
    return self.decoder.output_layer(readouts)

  def encode(self, source: jax.Array, *, train: bool = False) -> DecodeCarry:
    """Encodes the source into the decoder's initial carry.

    Returns:
      the decoding carry (see decoder.py): per-layer carries from the bridge,
      the encoder outputs ("memory") and their mask, and attention state.
    """
    source_mask = source != PAD_ID
    memory, final_states = self.encoder(source, source_mask, train=train)
    return self.decoder.initial_carry(self.bridge(final_states), memory,
                                      source_mask)

  def decode_step(self, carry: DecodeCarry, tokens: jax.Array):
    """One inference step: tokens [batch] -> (logits [batch, vocab], carry).

    The search code's `step_fn` order (decoding/greedy.py and the others);
    the decoder's own `step` returns (carry, logits), `nn.scan`'s order.
    """
    carry, logits = self.decoder.step(carry, tokens)
    return logits, carry
