"""Converting raw syscall arguments (unsigned 64-bit) to the C types they carry."""


def s32(value: int) -> int:
    """The low 32 bits as a signed int (fds, pids, signal numbers, AT_FDCWD)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def s64(value: int) -> int:
    """The value as a signed 64-bit long (offsets, clock ids)."""
    return value - (1 << 64) if value & (1 << 63) else value


def u32(value: int) -> int:
    """The low 32 bits as an unsigned int (flags, modes)."""
    return value & 0xFFFFFFFF
