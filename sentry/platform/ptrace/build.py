"""cffi (API mode) build script for the ptrace platform extension."""
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).parent

CDEF = """
struct user_regs_struct {
    unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx,
        rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base,
        ds, es, fs, gs;
};
struct rf_stop {
    int tid;
    int status;
    unsigned long sys[8];
    struct user_regs_struct regs;
};
#define RF_STUB_CHANNEL ...
unsigned long rf_stub_page(void);
unsigned long rf_stub_gadget_addr(void);
int rf_stub_create_master(int channel);
int rf_wait(int pid, int flags, struct rf_stop *out);
int rf_resume_wait(int tid, int set_rax, unsigned long rax, int sig, struct rf_stop *out);
int rf_resume(int tid, int set_rax, unsigned long rax, int sig);
int rf_getsiginfo(int tid, int *signo, int *code, unsigned long *addr);
int rf_sigchld_fd(void);
int rf_getregs(int tid, struct user_regs_struct *regs);
int rf_setregs(int tid, const struct user_regs_struct *regs);
int rf_getfpregs(int tid, void *buf);
int rf_setfpregs(int tid, const void *buf);
long rf_getxstate(int tid, void *buf, size_t size);
int rf_setxstate(int tid, const void *buf, size_t size);
int rf_inject(int tid, long nr, const unsigned long args[6], long *ret, int *child);
long rf_read(int pid, unsigned long addr, void *buf, size_t len);
long rf_write(int pid, unsigned long addr, const void *buf, size_t len);
long rf_read_cstr(int pid, unsigned long addr, char *buf, size_t max);
int rf_tgkill(int tgid, int tid, int sig);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "ringfence.sentry.platform.ptrace._ptrace",
    (HERE / "ptrace.c").read_text(),
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE), verbose=True)
