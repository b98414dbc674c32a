// The host's AMX-INT8 peak on one core: tdpbusd on tiles held in registers (four
// independent 16x16 i32 accumulators, 16x64 by 64x16 bytes: 16,384 u8×s8
// multiply-accumulates, 32,768 ops, per instruction). Linux grants the tile state
// on request (arch_prctl ARCH_REQ_XCOMP_PERM), as smelt does.
// Build and run: gcc -O2 -mamx-tile -mamx-int8 scripts/bench/amx_peak.c -o /tmp/amx_peak && /tmp/amx_peak
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
        printf("no AMX tile state: this host (or kernel) has no AMX\n");
        return 1;
    }
    unsigned char cfg[64] __attribute__((aligned(64)));
    memset(cfg, 0, sizeof cfg);
    cfg[0] = 1;
    for (int t = 0; t < 8; t++) {
        cfg[16 + 2 * t] = 64;
        cfg[48 + t] = 16;
    }
    _tile_loadconfig(cfg);
    static unsigned char buf[1024] __attribute__((aligned(64)));
    memset(buf, 1, sizeof buf);
    _tile_loadd(4, buf, 64);
    _tile_loadd(5, buf, 64);
    _tile_loadd(6, buf, 64);
    _tile_loadd(7, buf, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    long iters = 20000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; n < iters; n++) {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int out[256] __attribute__((aligned(64)));
    _tile_stored(0, out, 64);
    _tile_release();
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    double ops = 2.0 * 16384 * 4 * iters;
    printf("tdpbusd: %.1f int8 GOP/s (%d)\n", ops / s * 1e-9, out[0] & 1);
    return 0;
}
