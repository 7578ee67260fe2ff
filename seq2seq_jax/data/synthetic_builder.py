"""The synthetic tasks as a TFDS dataset builder (array_record, no TensorFlow).

Each parameter combination is its own BuilderConfig, named after its values,
so a changed length or seed never reuses a stale build. Processes that ask
for the same dataset at once (the runs of a study started together, the
hosts of a multi-host run on a shared disk) build it once: see `prepare`.
"""
import dataclasses
import fcntl
import functools
import os

import tensorflow_datasets as tfds

from seq2seq_jax.data import synthetic

PREPARE_LOCK = ".prepare.lock"  # beside the dataset's version folders


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  spec: synthetic.TaskSpec = None


def builder_config(spec: synthetic.TaskSpec) -> SyntheticConfig:
  name = (f"{spec.task}_len{spec.min_length}-{spec.max_length}_v{spec.num_symbols}"
          f"_n{spec.num_train}-{spec.num_validation}-{spec.num_test}"
          f"_seed{spec.seed}")
  return SyntheticConfig(name=name, spec=spec,
                         description=f"Synthetic {spec.task} task.")


class SyntheticTasks(tfds.core.GeneratorBasedBuilder):
  """Deterministically generated addition / copy / reverse / sort pairs."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "source": tfds.features.Text(),
            "target": tfds.features.Text(),
        }),
        supervised_keys=("source", "target"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    splits = synthetic.generate(self.builder_config.spec)
    return {name: self._generate_examples(examples)
            for name, examples in splits.items()}

  def _generate_examples(self, examples):
    for index, (source, target) in enumerate(examples):
      yield index, {"source": source, "target": target}


def prepare(spec: synthetic.TaskSpec, data_dir: str | None):
  """Builds (once) and returns {split: data source} of {'source','target'} records.

  TFDS builds into a temporary folder and renames it into place; a second
  process building the same dataset at the same time failed at that rename
  (FileExistsError). They take turns under an exclusive flock, which the
  kernel releases when its holder ends (on NFS, Linux maps flock to the
  server's locks); the builder is made under the lock, since one made
  before another process finished the dataset would not find its files.
  """
  make = functools.partial(SyntheticTasks, config=builder_config(spec),
                           data_dir=data_dir or None)
  directory = os.path.dirname(os.fspath(make().data_dir))
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, PREPARE_LOCK), "a", encoding="utf-8") as f:
    fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
    builder = make()
    builder.download_and_prepare(file_format="array_record")
  return {split: builder.as_data_source(split=split)
          for split in ("train", "validation", "test")}
