"""Argument checking for the command line: every value is checked when it is parsed.

The ``type=`` functions here refuse what cannot be right whatever the model (nan, inf, zero or
negative counts, probabilities outside [0, 1]) with a message that says what is expected. Errors
print as one line, ``openjukebox: error: ...``, never as a usage block or a traceback.
"""

from __future__ import annotations

import argparse
import math


class UsageError(Exception):
    """A command line that does not parse; the message names the option."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the option and where to read more."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _wanted(low: float | None, high: float | None, low_open: bool) -> str:
    if high is None:
        return "any number" if low is None else f"above {low:g}" if low_open else f"{low:g} or more"
    if low is None:
        return f"at most {high:g}"
    return f"from {low:g}{' (excluded)' if low_open else ''} to {high:g}"


def number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False, unit: str = ""):
    """A ``type=`` function: a finite ``kind`` (int or float) within [low, high] ((low, high] with
    ``low_open``); anything else is refused with the range it must be in."""
    noun = "a whole number" if kind is int else "a number"
    wanted = f"must be {noun}{unit}, {_wanted(low, high, low_open)}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{wanted}, not {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if (kind is float and not math.isfinite(value)) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{wanted}, not {text}")
        return value

    parse.__name__ = f"{kind.__name__} range"
    return parse


positive_float = number(float, 0, low_open=True)
seconds = number(float, 0, low_open=True, unit=" of seconds")
positive_int = number(int, 1)
non_negative_int = number(int, 0)
probability = number(float, 0, 1)
seed = number(int, 0, 2**63 - 1)
port = number(int, 1, 65535)
world_size = number(int, 1, unit=" of ranks")


def per_level(text: str) -> float | tuple[float, ...]:
    """``V`` for every level, or ``V,V,V``: one per level from the top down; each above 0 (--guidance,
    --temperature)."""
    values = tuple(positive_float(part.strip()) for part in text.split(","))
    return values[0] if len(values) == 1 else values


def layer_head(text: str) -> tuple[int, int]:
    """``LAYER:HEAD``, two whole numbers of 0 or more."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"takes LAYER:HEAD, two whole numbers such as 68:2, not {text!r}")
    return int(parts[0]), int(parts[1])


def quiet_flag(parser: argparse.ArgumentParser) -> None:
    """``-q`` on a subcommand too (``openjukebox sample -q``); it leaves the global one alone when absent."""
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")


def help_missing(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Options without help text, in this parser and its subcommands (a test keeps this empty)."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += help_missing(sub, f"{prefix}{name} ")
        elif action.help in (None, "") and not isinstance(action, argparse._HelpAction):
            missing.append(f"{prefix}{'/'.join(action.option_strings) or action.dest}")
    return missing
