"""Writes a trained run as a self-contained exported model for serving.

The encoder and the whole decode loop (greedy search, and beam search at one
beam size) are traced once and serialized with `jax.export` as StableHLO,
with a symbolic batch dimension, the parameters as their inputs (so the
computation holds no weights and the parameters load as plain arrays).
`seq2seq_jax/serving.py` reads the folder and translates with JAX alone;
its docstring lists the files.
"""
import os
import shutil
from typing import Dict, Optional, Sequence

import jax
from jax import export as jax_export
import jax.numpy as jnp
import numpy as np

from seq2seq_jax import files
from seq2seq_jax import serving
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.inference import trained_run
from seq2seq_jax.training import steps


def _export(fn, state, *extra_specs, platforms: Optional[Sequence[str]]):
  """fn(state, source, *extra) exported as g(param_leaves, source [batch,
  S], *extra), batch symbolic."""
  leaves, treedef = jax.tree_util.tree_flatten(state.params)

  def with_params(param_leaves, source, *extra):
    return fn(state.replace(params=treedef.unflatten(param_leaves)), source,
              *extra)

  batch, = jax_export.symbolic_shape("batch")
  source_length = extra_specs[0]
  specs = ([jax.ShapeDtypeStruct(leaf.shape, leaf.dtype) for leaf in leaves],
           jax.ShapeDtypeStruct((batch, source_length), jnp.int32),
           *extra_specs[1:])
  return jax_export.export(jax.jit(with_params), platforms=platforms)(*specs)


def export_run(workdir: str, output: str, *, checkpoint: str = "best",
               beam_size: int = 5,
               platforms: Optional[Sequence[str]] = None) -> Dict:
  """Writes OUTPUT/ (see serving.py) from a workdir's checkpoint.

  Args:
    workdir: a trained run.
    output: the folder to write; created, and must not hold files already.
    checkpoint: best, latest or average (as `evaluate`).
    beam_size: the beam size of beam.jax (it returns every one of the beam's
      hypotheses, so any nbest up to it can be served); >= 2.
    platforms: jax.export platforms, e.g. ("cpu", "cuda"); None: this
      machine's.

  Returns:
    the artifact.json record.
  """
  if beam_size < 2:
    raise ValueError(f"--beam_size must be >= 2 for the exported beam "
                     f"search, got {beam_size} (greedy is always exported)")
  if os.path.isdir(output) and os.listdir(output):
    raise ValueError(f"--output={output} is not empty; give a new folder")
  run = trained_run.load_run(workdir, checkpoint)
  max_length = run.max_decode_length
  greedy = _export(
      lambda state, source: steps.greedy_predict(state, source, max_length),
      run.state, run.source_length, platforms=platforms)
  beam = _export(
      lambda state, source, alpha: steps.beam_predict(
          state, source, max_length, beam_size, alpha, beam_size),
      run.state, run.source_length, jax.ShapeDtypeStruct((), jnp.float32),
      platforms=platforms)
  os.makedirs(output, exist_ok=True)
  for name, exported in ((serving.GREEDY_FILE, greedy),
                         (serving.BEAM_FILE, beam)):
    with open(os.path.join(output, name), "wb") as f:
      f.write(exported.serialize())
  leaves = jax.tree_util.tree_flatten_with_path(run.state.params)[0]
  np.savez(os.path.join(output, serving.PARAMS_FILE),
           **{f"p{i}": np.asarray(leaf) for i, (_, leaf) in enumerate(leaves)})
  for name in serving.VOCABULARY_FILES:
    shutil.copyfile(os.path.join(workdir, name), os.path.join(output, name))
  info = {
      "format_version": serving.FORMAT_VERSION,
      "normalization": trained_run.normalization(run.settings),
      "reverse_source": run.settings.data.reverse_source,
      "source_length": run.source_length,
      "max_decode_length": max_length,
      "beam_size": beam_size,
      "platforms": list(greedy.platforms),
      "jax_version": jax.__version__,
      "workdir": os.path.abspath(workdir),
      "checkpoint": checkpoint,
      "step": run.step,
      "parameters": [jax.tree_util.keystr(path) for path, _ in leaves],
      "model": settings_lib.to_dict(run.settings)["model"],
  }
  files.write_json(os.path.join(output, serving.ARTIFACT_FILE), info,
                   indent=1)
  return info
