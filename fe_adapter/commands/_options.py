"""Argument types the commands share: durations, fractions, device names, seeds. Each turns a bad value into argparse's
one-line usage error that names the option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from fe_adapter.device import DeviceError, check_device_name


def seconds(text: str) -> float:
    """A positive duration in seconds: "2s", "0.5s" or "2"."""
    value = text.strip().lower().removesuffix("s")
    try:
        duration = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 2s or 0.5, got {text!r}") from None
    if not duration > 0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return duration


def fraction(text: str) -> float:
    """A number in 0..1 ("0.5")."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # refused below
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in 0..1 like 0.5, got {text!r}")
    return value


def device(text: str) -> str:
    """A device name (whether this machine has it is checked when the command runs)."""
    try:
        return check_device_name(text)
    except DeviceError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--device ")) from None


def seed(text: str) -> int:
    """A seed: an integer >= 0."""
    return _integer(text, 0, "seed must be")


def positive_int(text: str) -> int:
    """An integer >= 1 ("5")."""
    return _integer(text, 1, "expected")


def at_least(least: int) -> Callable[[str], int]:
    """An argument type for an integer >= ``least`` (``at_least(16)`` for a pixel size, say)."""
    def parse(text: str) -> int:
        return _integer(text, least, "expected")

    return parse


def _integer(text: str, least: int, lead: str) -> int:
    """``text`` as an integer >= ``least``, else argparse's error, its message starting with ``lead``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{lead} an integer >= {least}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{lead} >= {least}, got {value}")
    return value
