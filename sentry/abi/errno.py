"""Linux errno values (x86_64) and their names."""
from errno import *  # noqa: F401,F403  (CPython's errno module carries Linux's values on Linux)
from errno import errorcode

# Kernel-internal restart codes: never seen by the program.
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516


def name(err: int) -> str:
    """The symbolic name of errno `err` (e.g. 'ENOENT')."""
    return errorcode.get(err, f"E{err}")
