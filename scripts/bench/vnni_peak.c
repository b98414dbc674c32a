// The host's int8 peak on one core (AVX512-VNNI): 16 independent vpdpbusd zmm
// chains, 64 u8×s8 multiply-accumulates (128 ops) each.
// Build and run: gcc -O3 -march=native scripts/bench/vnni_peak.c -o /tmp/vnni_peak && /tmp/vnni_peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
int main(void) {
    __m512i acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01010101);
    long iters = 50000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; n < iters; n++) {
        for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    int sink = 0;
    for (int i = 0; i < 16; i++) sink += _mm512_reduce_add_epi32(acc[i]);
    double ops = 2.0 * 64 * 16 * iters;  // 64 MACs per instruction, 2 ops each
    printf("vpdpbusd zmm: %.1f int8 GOP/s (%d)\n", ops / s * 1e-9, sink & 1);
    return 0;
}
