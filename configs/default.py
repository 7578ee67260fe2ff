"""Every key at its default: an LSTM learns addition ("37+415" -> "452").

The keys, their defaults and meanings are declared in seq2seq_jax/settings.py
(listed in docs/configuration.md). Runs on a fresh machine with no download:
the dataset is generated locally. Other configs start from this one and change
what differs. The config is locked: a misspelt key on the command line or in a
config file is an error, never silently ignored.
"""
from seq2seq_jax import settings


def get_config():
  return settings.default_config()
