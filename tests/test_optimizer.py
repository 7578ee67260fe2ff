"""The learning-rate schedules, their warm-up join, clipping and AdamW,
checked against the formulas they implement (hand-computed with NumPy)."""
import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax import settings
from seq2seq_jax.training import optimizer

PEAK, WARMUP, STEPS = 2e-3, 100, 1_000


def _train(**overrides) -> settings.TrainSettings:
  base = dataclasses.replace(settings.TrainSettings(), learning_rate=PEAK,
                             warmup_steps=WARMUP, num_steps=STEPS)
  return dataclasses.replace(base, **overrides)


def _rates(train, steps):
  schedule = optimizer.learning_rate_schedule(train)
  return np.array([float(schedule(step)) for step in steps])


@pytest.mark.parametrize("kind", ["constant", "cosine", "linear", "rsqrt"])
def test_warm_up_rises_linearly_to_the_peak_and_joins_the_decay(kind):
  rates = _rates(_train(lr_schedule=kind), range(WARMUP + 1))
  np.testing.assert_allclose(rates[0], PEAK / WARMUP, rtol=1e-5)
  np.testing.assert_allclose(np.diff(rates[:WARMUP]),
                             (PEAK - PEAK / WARMUP) / WARMUP, rtol=1e-4)
  # The decay starts at the peak: no jump where the two schedules join.
  np.testing.assert_allclose(rates[WARMUP], PEAK, rtol=1e-5)


def test_cosine_follows_the_cosine_and_ends_at_one_percent():
  train = _train(lr_schedule="cosine")
  steps = [WARMUP, 300, 550, STEPS, STEPS + 500]
  span = STEPS - WARMUP
  want = []
  for step in steps:
    t = min(step - WARMUP, span) / span
    want.append(PEAK * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))))
  np.testing.assert_allclose(_rates(train, steps), want, rtol=1e-5)
  assert want[-1] == pytest.approx(0.01 * PEAK)  # stays there after the end


def test_linear_decay_and_rsqrt_formulas():
  linear = _train(lr_schedule="linear")
  span = STEPS - WARMUP
  steps = [WARMUP, 400, STEPS, STEPS + 100]
  want = [PEAK + (0.01 * PEAK - PEAK) * min(s - WARMUP, span) / span
          for s in steps]
  np.testing.assert_allclose(_rates(linear, steps), want, rtol=1e-5)
  rsqrt = _train(lr_schedule="rsqrt")
  steps = [WARMUP, 2 * WARMUP, 10 * WARMUP]
  want = [PEAK * math.sqrt(WARMUP / (s - WARMUP + WARMUP)) for s in steps]
  np.testing.assert_allclose(_rates(rsqrt, steps), want, rtol=1e-5)


def test_schedule_steps_sets_the_horizon_instead_of_num_steps():
  short = _train(lr_schedule="cosine")
  extended = _train(lr_schedule="cosine", num_steps=3 * STEPS,
                    schedule_steps=STEPS)
  assert optimizer.schedule_horizon(extended) == STEPS
  steps = [0, 50, WARMUP, 400, STEPS, 2 * STEPS]
  np.testing.assert_array_equal(_rates(short, steps), _rates(extended, steps))


def test_no_warm_up_starts_at_the_peak():
  rates = _rates(_train(lr_schedule="cosine", warmup_steps=0), [0, 1])
  assert rates[0] == pytest.approx(PEAK)
  assert rates[1] < rates[0]


def _adam_by_hand(grads, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                  params=None):
  """Params after Adam(W) steps at a constant rate, from the paper's formulas."""
  m = v = 0.0
  p = np.array(params, np.float64)
  for t, g in enumerate(grads, 1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    update = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    p = p - lr * (update + weight_decay * p)
  return p


def _run(train, grads, params):
  tx = optimizer.make_optimizer(train)
  p = jnp.asarray(params, jnp.float32)
  state = tx.init(p)
  for g in grads:
    updates, state = tx.update(jnp.asarray(g, jnp.float32), state, p)
    p = p + updates
  return np.asarray(p)


def test_global_norm_clipping_scales_large_gradients_before_adam():
  params = [0.5, -1.0, 2.0]
  big = np.array([30.0, -40.0, 0.0])  # norm 50: clipped to norm 1
  small = np.array([0.3, 0.1, -0.2])  # norm < 1: untouched
  train = _train(lr_schedule="constant", warmup_steps=0, grad_clip_norm=1.0)
  got = _run(train, [big, small], params)
  want = _adam_by_hand([big / 50.0, small], PEAK, params=params)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  unclipped = _run(dataclasses.replace(train, grad_clip_norm=0.0),
                   [big, small], params)
  np.testing.assert_allclose(
      unclipped, _adam_by_hand([big, small], PEAK, params=params), rtol=1e-5)
  assert not np.allclose(got, unclipped)  # clipping changed the second step


def test_adamw_decays_weights_and_adam_does_not():
  params = [0.5, -1.0, 2.0]
  grads = [np.array([0.1, 0.2, -0.3])] * 3
  adamw = _train(lr_schedule="constant", warmup_steps=0, optimizer="adamw",
                 weight_decay=0.1, grad_clip_norm=0.0)
  np.testing.assert_allclose(
      _run(adamw, grads, params),
      _adam_by_hand(grads, PEAK, weight_decay=0.1, params=params), rtol=1e-5)
  adam = dataclasses.replace(adamw, optimizer="adam", weight_decay=0.0)
  np.testing.assert_allclose(_run(adam, grads, params),
                             _adam_by_hand(grads, PEAK, params=params),
                             rtol=1e-5)
