"""Constants behind /proc: clock ticks, task flags and states, rlimit names, CPU flags."""

# USER_HZ: the unit of times in /proc/PID/stat and /proc/stat (AT_CLKTCK).
CLK_TCK = 100

# The default /proc/sys/kernel/pid_max (PID_MAX_DEFAULT).
PID_MAX = 32768

# task_struct flags shown in /proc/PID/stat (include/linux/sched.h).
PF_RANDOMIZE = 0x00400000

# The long names of the one-letter states (fs/proc/array.c's task_state_array).
STATE_NAMES = {"R": "running", "S": "sleeping", "D": "disk sleep", "T": "stopped", "t": "tracing stop",
               "X": "dead", "Z": "zombie", "P": "parked", "I": "idle"}

# /proc/PID/limits rows, by RLIMIT_* number: (description, unit or "").
RLIMITS = (
    ("Max cpu time", "seconds"),
    ("Max file size", "bytes"),
    ("Max data size", "bytes"),
    ("Max stack size", "bytes"),
    ("Max core file size", "bytes"),
    ("Max resident set", "bytes"),
    ("Max processes", "processes"),
    ("Max open files", "files"),
    ("Max locked memory", "bytes"),
    ("Max address space", "bytes"),
    ("Max file locks", "locks"),
    ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""),
    ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
)
RLIMIT_RSS = 5
RLIMIT_SIGPENDING = 11

# /proc/cpuinfo flag names of the CPUID.1:EDX bits AT_HWCAP carries on x86_64 (None: reserved).
HWCAP_FLAGS = (
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", None, "sep", "mtrr", "pge", "mca",
    "cmov", "pat", "pse36", "pn", "clflush", None, "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht",
    "tm", "ia64", "pbe",
)
