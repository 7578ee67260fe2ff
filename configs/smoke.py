"""A seconds-long run of the default task, for laptops, CI and debugging."""
from configs import base


def get_config():
  config = base.get_config()
  config.model.hidden_size = 32
  config.model.embedding_size = 16
  config.data.max_length = 2
  config.data.num_train = 2_000
  config.data.num_validation = 200
  config.data.num_test = 200
  config.train.num_steps = 40
  config.train.batch_size = 32
  config.train.warmup_steps = 5
  config.train.log_every = 10
  config.train.eval_every = 20
  config.train.checkpoint_every = 20
  config.train.eval_batch_size = 100
  return config
