// Hides AVX-512 from CPUID for one process tree, so that every library in it (tract, our
// tiles, onnxruntime's MLAS, numpy) takes the code paths it takes on an AVX2-only processor.
// How: arch_prctl(ARCH_SET_CPUID, 0) makes the CPUID instruction fault (the processor must
// have the cpuid_fault feature); the SIGSEGV handler runs the real CPUID with faulting briefly
// off, clears the AVX-512 bits of leaf 7 and steps over the instruction.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile unsigned long emulated;

static void on_segv(int sig, siginfo_t *info, void *raw) {
    ucontext_t *ctx = raw;
    greg_t *r = ctx->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (!(ip[0] == 0x0f && ip[1] == 0xa2)) {
        signal(SIGSEGV, SIG_DFL); // a real fault: let it happen again, unhandled
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) {
        b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
               (1u << 30) | (1u << 31));
        c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23));
    } else if (leaf == 7 && sub == 1) {
        a &= ~(1u << 5); // AVX512_BF16
    }
    r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
    r[REG_RIP] += 2;
    emulated++;
}

__attribute__((destructor)) static void report(void) {
    if (getenv("HIDE_AVX512_REPORT")) fprintf(stderr, "hide_avx512: %lu CPUID emulated\n", emulated);
}

__attribute__((constructor)) static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        perror("hide_avx512: arch_prctl(ARCH_SET_CPUID)");
        _exit(3);
    }
}
