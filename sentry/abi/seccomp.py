"""seccomp filters as OCI specs name them (libseccomp's SCMP_* names) and the SIGSYS a
SECCOMP_RET_TRAP sends (linux/seccomp.h, linux/audit.h, asm-generic/siginfo.h)."""

# Actions, from the most to the least restrictive: when several rules of a filter match a call,
# the first of these wins (the kernel's order of SECCOMP_RET_* precedence).
ACT_KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
ACT_KILL_THREAD = "SCMP_ACT_KILL_THREAD"
ACT_TRAP = "SCMP_ACT_TRAP"
ACT_ERRNO = "SCMP_ACT_ERRNO"
ACT_NOTIFY = "SCMP_ACT_NOTIFY"
ACT_TRACE = "SCMP_ACT_TRACE"
ACT_LOG = "SCMP_ACT_LOG"
ACT_ALLOW = "SCMP_ACT_ALLOW"
PRECEDENCE = (ACT_KILL_PROCESS, ACT_KILL_THREAD, ACT_TRAP, ACT_ERRNO, ACT_NOTIFY, ACT_TRACE, ACT_LOG, ACT_ALLOW)
# Other spellings of the same actions.
ACT_ALIASES = {"SCMP_ACT_KILL": ACT_KILL_THREAD}

# Argument comparisons (struct scmp_arg_cmp ops).
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
SYSCALL_ARGS = 6

# The architectures a profile may list: the sandbox runs x86_64 programs, so only the x86_64
# rules can ever match; the others are accepted (libseccomp knows them) and have no effect.
ARCH_NATIVE = ("SCMP_ARCH_NATIVE", "SCMP_ARCH_X86_64")
ARCH_OTHERS = ("SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",
               "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
               "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
               "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
               "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")

# SIGSYS from SECCOMP_RET_TRAP: si_code, and si_arch for an x86_64 call.
SYS_SECCOMP = 1
AUDIT_ARCH_X86_64 = 0xC000003E
