"""The character device registry: what opening a device node (anywhere) opens."""
from __future__ import annotations

from typing import Callable

from ..abi.errno import ENXIO
from ..kernel.errors import SysError

_openers: dict[int, Callable] = {}


def register(rdev: int, opener: Callable) -> None:
    """Make `opener(t, loc, flags) -> File` serve character device `rdev`."""
    _openers[rdev] = opener


def open_device(t, loc, flags: int, rdev: int):
    """Open character device `rdev` at `loc`; ENXIO if the sentry has no such device."""
    opener = _openers.get(rdev)
    if opener is None:
        raise SysError(ENXIO)
    return opener(t, loc, flags)
