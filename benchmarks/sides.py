"""The two sides of benchmarks/compare_pytorch.py: the project's jitted train
step and the PyTorch reference of each case, and the check that they do equal
work (the same loss, gradients and Adam update from the same weights)."""
import dataclasses
import time
from typing import Any, Dict, List

import numpy as np

from benchmarks import benchmark as bench
from benchmarks import cases as cases_lib
from seq2seq_jax.data.vocabulary import BOS_ID

RTOL, ATOL = 2e-4, 2e-5

CASES = {
    "lstm_h512": cases_lib.Case(),
    "gru_h512": cases_lib.Case(model={"cell": "gru"}),
    "lstm_h1024": cases_lib.Case(model={"hidden_size": 1024}),
    "bigru256_bahdanau": cases_lib.Case(
        model={"cell": "gru", "hidden_size": 256, "bidirectional": True,
               "bridge": "linear", "attention": "bahdanau",
               "decoder_hidden_size": 256},
        batch_size=128),
    "multi30k_padded": cases_lib.CASES["multi30k_padded"],
}
DECODE_CASES = ("lstm_h512", "gru_h512", "lstm_h1024")


def _check_case(name: str) -> None:
  if name not in CASES:
    raise ValueError(f"unknown case {name!r}; valid: {', '.join(CASES)}")


def case_names(text: str) -> List[str]:
  """The names in a comma-separated `--cases` value, each checked."""
  names = [name for name in text.split(",") if name]
  for name in names:
    _check_case(name)
  return names


def case_for(name: str, tiny: bool) -> cases_lib.Case:
  _check_case(name)
  return cases_lib.shrink(CASES[name]) if tiny else CASES[name]


# --- the two sides ------------------------------------------------------------

class JaxSide:
  """The project's train step and decoders for one case (on JAX's default
  backend: the GPU where there is one)."""

  def __init__(self, case: cases_lib.Case, dtype: str = "float32"):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from seq2seq_jax.training import optimizer as optimizer_lib  # pylint: disable=g-import-not-at-top
    from seq2seq_jax.training import steps  # pylint: disable=g-import-not-at-top
    from seq2seq_jax.models.seq2seq import Seq2Seq  # pylint: disable=g-import-not-at-top
    self.jax, self.steps = jax, steps
    self.case = case
    self.settings = cases_lib.settings_for(case)
    if dtype != "float32":
      self.settings = dataclasses.replace(self.settings, train=dataclasses.replace(
          self.settings.train, dtype=dtype))
    self.batch_np = cases_lib.make_batch(case)
    self.batch = {k: jnp.asarray(v) for k, v in self.batch_np.items()}
    model = Seq2Seq(self.settings.model, case.source_vocab_size,
                    case.target_vocab_size)
    self.tx = optimizer_lib.make_optimizer(self.settings.train)
    self.schedule = optimizer_lib.learning_rate_schedule(self.settings.train)
    init_rng, self.rng = jax.random.split(jax.random.PRNGKey(0))
    self.state = steps.create_train_state(
        model, self.tx, steps.StepOptions.from_settings(self.settings.train),
        init_rng, self.batch["source"].shape[1],
        self.batch["target_outputs"].shape[1])
    self.initial_params = jax.device_get(self.state.params)
    start = time.perf_counter()
    self.train = steps.jit_train_step.lower(self.state, self.batch,
                                            self.rng).compile()
    self.compile_s = time.perf_counter() - start
    self._decoders = None

  def train_seconds(self, repeats: int) -> List[float]:
    times = []
    for _ in range(repeats + 1):  # the first warms up after a pause
      start = time.perf_counter()
      self.state, metrics = self.train(self.state, self.batch, self.rng)
      self.jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    return times[1:]

  def decode_seconds(self, what: str, repeats: int) -> List[float]:
    if self._decoders is None:
      # A copy: the train step donates (frees) self.state's buffers.
      state = bench._without_eos(self.jax.tree.map(  # pylint: disable=protected-access
          self.jax.numpy.copy, self.state))
      source = self.batch["source"]
      length = self.batch["target_outputs"].shape[1]
      greedy = self.steps.jit_greedy_predict.lower(
          state, source, max_length=length).compile()
      beam = self.steps.jit_beam_predict.lower(
          state, source, alpha=bench.BEAM_ALPHA, max_length=length,
          beam_size=bench.BEAM_SIZE, nbest=1).compile()
      self._decoders = {
          "greedy": lambda: greedy(state, source),
          "beam5": lambda: beam(state, source, alpha=bench.BEAM_ALPHA)}
    fn = self._decoders[what]
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      self.jax.block_until_ready(fn())
      times.append(time.perf_counter() - start)
    return times[1:]

  def loss_grads_update(self):
    """(loss, grads, new params) of one step from the initial parameters,
    without dropout, in the project's layout (numpy)."""
    jax, jnp = self.jax, self.jax.numpy
    import optax  # pylint: disable=g-import-not-at-top
    from seq2seq_jax.training import losses  # pylint: disable=g-import-not-at-top
    params = jax.tree.map(jnp.asarray, self.initial_params)
    model = self.state.model

    def loss(p):
      logits = model.apply({"params": p}, self.batch["source"],
                           self.batch["target_inputs"], train=False)
      return losses.sequence_sums(logits, self.batch["target_outputs"])[0]

    value, grads = jax.value_and_grad(loss)(params)
    updates, _ = self.tx.update(grads, self.tx.init(params), params)
    new = optax.apply_updates(params, updates)
    return (float(value), jax.device_get(grads), jax.device_get(new),
            float(self.schedule(0)))


def _reference_kwargs(case: cases_lib.Case, s) -> Dict[str, Any]:
  m = s.model
  return dict(cell=m.cell, source_vocab=case.source_vocab_size,
              target_vocab=case.target_vocab_size,
              embedding=m.embedding_size, hidden=m.hidden_size,
              num_layers=m.num_layers, dropout=m.dropout,
              bidirectional=m.bidirectional, bridge=m.bridge,
              attention=m.attention, decoder_hidden=m.decoder_hidden_size)


class TorchSide:
  """The PyTorch reference's train step and greedy decoder for one case."""

  def __init__(self, case: cases_lib.Case, learning_rate: float = 1e-3,
               dropout: bool = True, device: str = "cpu",
               dtype: str = "float32"):
    import contextlib  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
    self.torch, self.ref, self.device = torch, ref, device
    # bfloat16: autocast, as a PyTorch user gets mixed precision.
    self.autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)
                     ) if dtype == "bfloat16" else contextlib.nullcontext
    s = cases_lib.settings_for(case)
    kwargs = _reference_kwargs(case, s)
    if not dropout:
      kwargs["dropout"] = 0.0
    torch.manual_seed(0)
    self.model = ref.Seq2Seq(**kwargs).to(device)
    self.optimizer = ref.make_optimizer(self.model, learning_rate)
    self.batch = {k: torch.from_numpy(v.astype(np.int64)).to(device)
                  for k, v in cases_lib.make_batch(case).items()}
    start = time.perf_counter()
    self._step()  # warm-up
    self.compile_s = time.perf_counter() - start

  def _sync(self) -> None:
    if self.device == "cuda":
      self.torch.cuda.synchronize()

  def _step(self) -> None:
    with self.autocast():
      self.ref.train_step(self.model, self.optimizer, self.batch)
    self._sync()

  def train_seconds(self, repeats: int) -> List[float]:
    self.model.train()
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      self._step()
      times.append(time.perf_counter() - start)
    return times[1:]

  def decode_seconds(self, what: str, repeats: int) -> List[float]:
    if what != "greedy":
      raise ValueError("the reference decodes greedily only")
    self.model.eval()
    source = self.batch["source"]
    length = self.batch["target_outputs"].shape[1]
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      with self.autocast():
        self.model.greedy(source, length, BOS_ID)
      self._sync()
      times.append(time.perf_counter() - start)
    return times[1:]


# --- equal work -----------------------------------------------------------------

def check_equal_work(name: str, tiny: bool = True) -> Dict[str, float]:
  """Loss, gradients and one Adam update agree; raises AssertionError if not.

  Returns:
    {"loss": the project's loss, "max_grad_error": the largest
    |difference| / (atol + rtol |value|) over all gradients (<= 1 passes)}.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
  case = case_for(name, tiny)
  jax_side = JaxSide(case)
  loss, grads, new_params, learning_rate = jax_side.loss_grads_update()
  torch_side = TorchSide(case, learning_rate=learning_rate, dropout=False)
  model = torch_side.model
  ref.load_project_params(model, jax_side.initial_params)
  model.train()  # dropout is 0 here; train mode as in training
  torch_side.optimizer = ref.make_optimizer(model, learning_rate)
  torch_side.optimizer.zero_grad(set_to_none=True)
  torch_loss = ref.loss_fn(model, torch_side.batch)
  torch_loss.backward()
  want_grads = ref.parameter_map(model, grads)
  skip = {n for n in want_grads if model.cell == "lstm" and "bias_hh" in n}
  worst = 0.0
  for pname, parameter in model.named_parameters():
    if pname in skip:  # the project's LSTM has no recurrent bias
      continue
    got = parameter.grad.detach().numpy()
    want = want_grads[pname].numpy()
    error = np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want)))
    worst = max(worst, float(error))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                               err_msg=f"{name}: gradient of {pname}")
  np.testing.assert_allclose(float(torch_loss.detach()), loss, rtol=1e-5,
                             err_msg=f"{name}: loss")
  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
  torch_side.optimizer.step()
  want_params = ref.parameter_map(model, new_params)
  for pname, parameter in model.named_parameters():
    if pname in skip:
      continue
    np.testing.assert_allclose(parameter.detach().numpy(),
                               want_params[pname].numpy(), rtol=RTOL,
                               atol=ATOL, err_msg=f"{name}: updated {pname}")
  return {"loss": loss, "max_grad_error": worst}
