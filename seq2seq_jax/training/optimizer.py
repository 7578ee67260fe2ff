"""Optimizer and learning-rate schedule from the train settings (optax)."""
import jax.numpy as jnp
import optax

from seq2seq_jax.settings import TrainSettings


# Schedules whose shape depends on the run's length (its horizon).
HORIZON_SCHEDULES = ("cosine", "linear")


def schedule_horizon(t: TrainSettings) -> int:
  """The step at which the decay ends: train.schedule_steps, else num_steps."""
  return t.schedule_steps or t.num_steps


def learning_rate_schedule(t: TrainSettings) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then the named decay; cosine and
  linear end at 1% of the peak at `schedule_horizon` and stay there."""
  peak, warmup = t.learning_rate, t.warmup_steps
  decay_steps = max(schedule_horizon(t) - warmup, 1)
  if t.lr_schedule == "constant":
    decay = optax.constant_schedule(peak)
  elif t.lr_schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=0.01)
  elif t.lr_schedule == "linear":
    decay = optax.linear_schedule(peak, peak * 0.01, decay_steps)
  elif t.lr_schedule == "rsqrt":
    def decay(step):
      # join_schedules also evaluates it before the warm-up ends (step < 0).
      step = jnp.maximum(step, 0)
      return peak * (max(warmup, 1) / (step + max(warmup, 1))) ** 0.5
  else:
    raise ValueError(f"unknown lr_schedule {t.lr_schedule!r}")
  if warmup == 0:
    return decay
  warm = optax.linear_schedule(peak / warmup, peak, warmup)
  return optax.join_schedules([warm, decay], [warmup])


def make_optimizer(t: TrainSettings) -> optax.GradientTransformation:
  """Global-norm clipping, then Adam or AdamW with the schedule."""
  schedule = learning_rate_schedule(t)
  if t.optimizer == "adam":
    opt = optax.adam(schedule)
  elif t.optimizer == "adamw":
    opt = optax.adamw(schedule, weight_decay=t.weight_decay)
  else:
    raise ValueError(f"unknown optimizer {t.optimizer!r}")
  if t.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(t.grad_clip_norm), opt)
  return opt
