"""A seconds-long run of the default task, for laptops, CI and debugging."""
from configs import default


def get_config():
  config = default.get_config()
  config.model.hidden_size = 32
  config.model.embedding_size = 16
  config.data.synthetic.max_length = 2
  config.data.synthetic.num_train = 2_000
  config.data.synthetic.num_validation = 200
  config.data.synthetic.num_test = 200
  config.train.num_steps = 40
  config.train.batch_size = 32
  config.train.warmup_steps = 5
  config.train.log_every = 10
  config.train.eval_every = 20
  config.train.checkpoint_every = 20
  config.train.eval_batch_size = 100
  return config
