"""Pure, module-level step functions: init, train, eval, greedy, beam and
sampled prediction.

The train state carries everything that changes during training; the static
parts (apply function, optimizer, loss options) are pytree metadata, so
`jax.jit(train_step, donate_argnums=0)` compiles once per batch shape.
"""
import dataclasses
from typing import Any, Dict, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID
from seq2seq_jax.decoding import beam_search
from seq2seq_jax.decoding import ensemble
from seq2seq_jax.decoding import greedy
from seq2seq_jax.decoding import sampling
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import compact_output
from seq2seq_jax.training import losses


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """Static options of the step functions.

  dtype: the compute dtype. With "bfloat16" the float32 parameters are cast
  to bf16 for the forward and backward pass (so activations are bf16), while
  the gradients, parameters and optimizer state stay float32 and the loss is
  computed from float32 logits.
  """
  label_smoothing: float = 0.0
  teacher_forcing: float = 1.0
  dtype: str = "float32"

  @classmethod
  def from_settings(cls, train) -> "StepOptions":
    return cls(label_smoothing=train.label_smoothing,
               teacher_forcing=train.teacher_forcing, dtype=train.dtype)


def _compute_params(params, dtype: str):
  """The parameters in the compute dtype (a no-op for float32)."""
  if dtype == "float32":
    return params
  return jax.tree.map(lambda p: p.astype(dtype)
                      if jnp.issubdtype(p.dtype, jnp.floating) else p, params)


def _apply(state, params, *args, **kwargs):
  """model.apply in the compute dtype; floating outputs come back float32."""
  out = state.model.apply(
      {"params": _compute_params(params, state.options.dtype)}, *args, **kwargs)
  if state.options.dtype == "float32":
    return out
  return jax.tree.map(lambda x: x.astype(jnp.float32)
                      if jnp.issubdtype(x.dtype, jnp.floating) else x, out)


class TrainState(flax.struct.PyTreeNode):
  """step, params, optimizer state, and counters of skipped (non-finite) updates."""
  step: jax.Array
  params: Any
  opt_state: Any
  nonfinite_consecutive: jax.Array
  nonfinite_total: jax.Array
  model: Seq2Seq = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  options: StepOptions = flax.struct.field(pytree_node=False)


def create_train_state(model: Seq2Seq, tx, options: StepOptions, rng: jax.Array,
                       source_length: int, target_length: int) -> TrainState:
  """Initialises parameters (shapes only depend on the sizes, not the data)."""
  source = jnp.ones((1, source_length), jnp.int32)
  target = jnp.ones((1, target_length), jnp.int32)
  params = jax.jit(model.init)(rng, source, target)["params"]
  return TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                    nonfinite_consecutive=jnp.int32(0),
                    nonfinite_total=jnp.int32(0),
                    model=model, tx=tx, options=options)


def skip_by_branch() -> bool:
  """Whether the train step skips a non-finite update with `lax.cond`
  (CPU) rather than `where(finite, new, old)` over every leaf.

  On CPU the select is one more pass over the parameters and both Adam
  moments, 1-4% of a standard case's step (docs/performance.md); a branch
  costs nothing. XLA:GPU instead copies a conditional's predicate to the
  host and waits for it in the middle of the step, while the select runs
  at device memory speed, so other backends keep the select.
  """
  return jax.default_backend() == "cpu"


def _compact_loss(state, params, batch, rngs=None, train: bool = True):
  """`losses.sequence_sums` with the output layer on real positions only
  (compact_output.py), in the compute dtype like `_apply`."""
  params = _compute_params(params, state.options.dtype)
  readouts = state.model.apply({"params": params}, batch["source"],
                               batch["target_inputs"], train=train, rngs=rngs,
                               method=Seq2Seq.features)
  project = lambda p, x: state.model.apply({"params": p}, x,
                                           method=Seq2Seq.output_layer)
  return compact_output.sequence_sums(project, params, readouts,
                                      batch["target_outputs"],
                                      state.options.label_smoothing)


def train_step(state: TrainState, batch: Dict[str, jax.Array],
               rng: jax.Array) -> Tuple[TrainState, Dict[str, jax.Array]]:
  """One optimizer update on a batch.

  The step's randomness is `fold_in(rng, state.step)`, so the RNG stream is
  restored with the step. A non-finite loss or gradient skips the update
  (params and optimizer state unchanged) and is counted.

  Args:
    state: the train state (donated).
    batch: source [B, S], target_inputs [B, T], target_outputs [B, T].
    rng: the run's base key.

  Returns:
    (new state, metric sums plus train_loss, grad_norm and skipped).
  """
  step_rng = jax.random.fold_in(rng, state.step)
  dropout_rng, sampling_rng = jax.random.split(step_rng)

  rngs = {"dropout": dropout_rng, "sampling": sampling_rng}

  def loss_fn(params):
    if compact_output.applies(state.options.teacher_forcing):
      return _compact_loss(state, params, batch, rngs)
    logits = _apply(
        state, params, batch["source"], batch["target_inputs"], train=True,
        teacher_forcing=state.options.teacher_forcing, rngs=rngs)
    return losses.sequence_sums(logits, batch["target_outputs"],
                                state.options.label_smoothing)

  (loss, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.tree.norm(grads)
  # A NaN or inf in any gradient makes the global norm non-finite, so one
  # scalar test replaces a pass over every leaf (a norm that overflows from
  # finite gradients is skipped too: clipping by it would zero the update).
  # Why not optax.apply_if_finite: docs/runs.md, "Skipped updates".
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

  def update():
    updates, new_opt_state = state.tx.update(grads, state.opt_state,
                                             state.params)
    return optax.apply_updates(state.params, updates), new_opt_state

  if skip_by_branch():
    new_params, new_opt_state = jax.lax.cond(
        finite, update, lambda: (state.params, state.opt_state))
  else:
    keep_new = lambda new, old: jnp.where(finite, new, old)
    new_params, new_opt_state = jax.tree.map(
        keep_new, update(), (state.params, state.opt_state))
  new_state = state.replace(
      step=state.step + 1,
      params=new_params,
      opt_state=new_opt_state,
      nonfinite_consecutive=jnp.where(finite, 0, state.nonfinite_consecutive + 1),
      nonfinite_total=state.nonfinite_total + (~finite).astype(jnp.int32))
  metrics = dict(sums, train_loss=loss, grad_norm=grad_norm,
                 skipped=(~finite).astype(jnp.float32))
  return new_state, metrics


def eval_step(state: TrainState, batch: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """Teacher-forced metric sums on a batch (no dropout)."""
  if compact_output.applies(1.0):
    return _compact_loss(state, state.params, batch, train=False)[1]
  logits = _apply(state, state.params, batch["source"], batch["target_inputs"],
                  train=False)
  return losses.sequence_sums(logits, batch["target_outputs"])[1]


class Ensemble(flax.struct.PyTreeNode):
  """Several trained models decoding as one (decoding/ensemble.py).

  Pass it where the prediction functions take a state, with a tuple of
  sources (one per member, each encoded as that member was trained, e.g.
  reversed or not) where they take a source.
  """
  members: Tuple[TrainState, ...]
  combination: str = flax.struct.field(pytree_node=False,
                                       default="mean_logprob")


def _decoder(state, source):
  """(step_fn, initial carry) for the search functions, from encoding `source`.

  Args:
    state: a TrainState, or an Ensemble.
    source: [batch, source_length] ids; for an Ensemble a tuple of them.
  """
  if isinstance(state, Ensemble):
    if len(source) != len(state.members):
      raise ValueError(f"{len(state.members)} ensemble members, "
                       f"{len(source)} sources")
    return ensemble.combine([_decoder(member, member_source) for
                             member, member_source in zip(state.members,
                                                          source)],
                            state.combination)
  carry = _apply(state, state.params, source, method=Seq2Seq.encode)

  def step_fn(tokens, carry):
    return _apply(state, state.params, carry, tokens,
                  method=Seq2Seq.decode_step)

  return step_fn, carry


def _batch_size(source) -> int:
  """Rows of a source batch, or of an ensemble's tuple of source batches."""
  return jax.tree_util.tree_leaves(source)[0].shape[0]


def greedy_predict(state, source, max_length: int) -> jax.Array:
  """Greedy decoding of a padded source batch -> [batch, max_length] ids.

  `state` is a TrainState or an Ensemble (with a tuple of sources); so for
  beam and sampled prediction below.

  Jit with `static_argnames="max_length"`.
  """
  step_fn, carry = _decoder(state, source)
  return greedy.greedy_search(step_fn, carry, _batch_size(source),
                              max_length, BOS_ID, EOS_ID)


def beam_predict(state, source, max_length: int, beam_size: int,
                 alpha: float, nbest: int):
  """Beam search of a padded source batch.

  Returns:
    (tokens [batch, nbest, max_length], scores [batch, nbest]), best first.
    Jit with `static_argnames=("max_length", "beam_size", "nbest")`.
  """
  step_fn, carry = _decoder(state, source)
  return beam_search.beam_search(step_fn, carry, _batch_size(source),
                                 max_length, BOS_ID, EOS_ID, beam_size=beam_size,
                                 alpha=alpha, nbest=nbest)


def sample_predict(state, source, max_length: int, rng: jax.Array,
                   temperature, top_k: int, first_row):
  """Temperature (top-k) sampling of a padded source batch -> [batch,
  max_length] ids; row r uses fold_in(rng, first_row + r).

  Jit with `static_argnames=("max_length", "top_k")`.
  """
  step_fn, carry = _decoder(state, source)
  return sampling.sample(step_fn, carry, _batch_size(source), max_length,
                         BOS_ID, EOS_ID, rng=rng, temperature=temperature,
                         top_k=top_k, first_row=first_row)


jit_train_step = jax.jit(train_step, donate_argnums=0)
jit_eval_step = jax.jit(eval_step)
jit_greedy_predict = jax.jit(greedy_predict, static_argnames="max_length")
jit_sample_predict = jax.jit(sample_predict,
                             static_argnames=("max_length", "top_k"))
jit_beam_predict = jax.jit(beam_predict,
                           static_argnames=("max_length", "beam_size", "nbest"))
