"""What the command-line entry points share: one-line errors and quiet logs.

A user's mistake (a misspelt config key, a missing config file, a data file
with no usable pairs, a workdir in use) is printed as one line, `error: ...`,
and the command exits with status 2; a traceback is for bugs. `--traceback`
shows it as well. Each entry point (main, evaluate, translate, export)
defines its own flags and calls `run(main)`; this module adds only
`--traceback`, which all of them accept.
"""
import os
import re
import sys
import traceback
from typing import Callable, NoReturn, Sequence

from absl import app
from absl import flags
from absl import logging

from seq2seq_jax import settings
from seq2seq_jax.data.text.text_pairs import DataError
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import preemption
from seq2seq_jax.training import reporting
from seq2seq_jax.training import workdir

flags.DEFINE_bool("traceback", False,
                  "On an error, print the traceback, not just its one line.")

USAGE_ERROR_CODE = 2


class UserError(Exception):
  """A mistake in what the user asked for, worth one line (not a bug)."""


# Raised by the library for mistakes in configs, data and workdirs.
USER_ERRORS = (UserError, settings.ConfigError, workdir.WorkdirError,
               checkpointing.CheckpointError, DataError)


def fail(message: str, error: BaseException = None) -> NoReturn:
  """Prints `error: message` (and the traceback when asked) and exits 2."""
  if error is not None and _wants_traceback():
    traceback.print_exception(error, file=sys.stderr)
  print(f"error: {message}", file=sys.stderr)
  sys.exit(USAGE_ERROR_CODE)


def _wants_traceback() -> bool:
  if "--traceback" in sys.argv:
    return True
  try:
    return bool(flags.FLAGS.traceback)
  except flags.UnparsedFlagAccessError:
    return False


def _one_line(text) -> str:
  return re.sub(r"\s+", " ", str(text)).strip()


def describe_parse_error(error: BaseException, argv: Sequence[str]) -> str:
  """One line for a failure while reading flags and the config file."""
  config = next((a.split("=", 1)[1] for a in argv
                 if a.startswith("--config=")), None)
  message = str(error)
  if isinstance(error, flags.Error):
    return _one_line(message)
  if isinstance(error, AttributeError) and "Did you mean" in message:
    # ml_collections: "'cel'\nDid you mean "cell" instead of "cel"?"
    key = _one_line(message.split("\\n")[0].split("\n")[0]).strip("'\"\\")
    hint = re.search(r'Did you mean "([^"]+)"', message)
    option = next((a.split("=", 1)[0] for a in argv
                   if a.startswith("--config.") and
                   re.search(rf"\.{re.escape(key)}(=|$|\.)", a.split("=", 1)[0])),
                  f"--config...{key}")
    return (f"{option}: no such config key {key!r}"
            + (f"; did you mean {hint.group(1)!r}?" if hint else ""))
  if "get_config" in message:
    return f"--config={config}: defines no get_config(); pass one of configs/*.py"
  if isinstance(error, (AttributeError, KeyError)):
    return f"a --config override names no config key: {_one_line(message)}"
  if config and not os.path.exists(config):
    return f"--config={config}: no such file"
  if isinstance(error, SyntaxError):
    return (f"--config={config}: not a Python config file (line "
            f"{error.lineno}: {error.msg}); pass one of configs/*.py")
  if config and isinstance(error, (OSError, ImportError, AttributeError)):
    return (f"--config={config}: could not load a config from it "
            f"({type(error).__name__}: {_one_line(message)[:300]}); it must "
            "define get_config()")
  return f"{type(error).__name__}: {_one_line(message)[:500]}"


def _parse_flags(argv):
  try:
    remaining = flags.FLAGS(argv)
    if "config" in flags.FLAGS and flags.FLAGS.config is not None:
      # config_flags defers a failed load until the config is first used.
      getattr(flags.FLAGS.config, "to_dict")
    return remaining
  except Exception as e:  # pylint: disable=broad-except
    fail(describe_parse_error(e, argv), e)


def run(main: Callable, extra_errors: Sequence[type] = ()) -> None:
  """app.run(main) with one-line errors for user mistakes (see above);
  `extra_errors` are further exception types that are not bugs."""
  user_errors = USER_ERRORS + tuple(extra_errors)

  def guarded(argv):
    reporting.quiet_library_logs()
    try:
      return main(argv)
    except preemption.Preempted as e:
      logging.warning("%s", e)
      sys.exit(preemption.PREEMPTED_EXIT_CODE)
    except user_errors as e:
      fail(_one_line(e) if "\n" not in str(e) else str(e), e)

  app.run(guarded, flags_parser=_parse_flags)
