"""Memory-management ABI constants (asm-generic/mman-common.h, x86_64)."""

PAGE_SIZE = 4096
PAGE_MASK = ~(PAGE_SIZE - 1)

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_32BIT = 0x40
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_FIXED_NOREPLACE = 0x100000

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

MADV_DONTNEED = 4

# The highest user address + 1 on x86_64 with 4-level page tables.
TASK_SIZE = 0x7FFFFFFFF000


def page_down(addr: int) -> int:
    """`addr` rounded down to a page boundary."""
    return addr & PAGE_MASK


def page_up(addr: int) -> int:
    """`addr` rounded up to a page boundary."""
    return (addr + PAGE_SIZE - 1) & PAGE_MASK
