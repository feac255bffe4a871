"""The exception a syscall handler raises to fail with an errno."""


class SysError(Exception):
    """Fail the current syscall with `errno` (the handler's result becomes -errno)."""

    __slots__ = ("errno",)

    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno
