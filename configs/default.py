"""The embedded default: an LSTM learns multi-digit addition ("37+415" -> "452").

Runs on a fresh machine with no download: the dataset is generated locally.
"""
from configs import base


def get_config():
  config = base.get_config()
  config.data.task = "addition"
  return config
