/*
 * stream_probe: the memory-bandwidth ceiling for one RMSProp step's access pattern.
 *
 *   stream_probe N PATTERN THREADS SAMPLES
 *     PATTERN  step_default   reads p, g, nu;         writes p, nu         (3R 2W, 20 B/elem f32)
 *              update_default reads g, nu;            writes u, nu         (2R 2W, 16 B/elem)
 *              step_cm        reads p, g, nu, mu, t;  writes p, nu, mu, t  (5R 4W, 36 B/elem)
 *              update_cm      reads g, nu, mu, t;     writes u, nu, mu, t  (4R 4W, 32 B/elem)
 *     THREADS  1 = the main thread; k > 1 = k threads (the main one included), each on a
 *              contiguous 1/k of every array, started once and synchronised by a barrier
 *
 * Each element gets a few multiply-adds and no division or square root, so the loop is
 * bound by memory (or cache) bandwidth, never by arithmetic: what a step with the same
 * reads and writes can reach at best. Prints "median_s min_s" per pass.
 * Built with: cc -O3 -march=x86-64-v3 -pthread stream_probe.c
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { STEP_DEFAULT, UPDATE_DEFAULT, STEP_CM, UPDATE_CM };

static float *P, *G, *NU, *MU, *TR, *U;
static size_t N;
static int PATTERN, THREADS;
static pthread_barrier_t BAR;
static volatile int STOP;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pass(size_t lo, size_t hi) {
    const float a = 0.9f, b = 0.1f, c = 1e-3f;
    float *restrict p = P, *restrict nu = NU, *restrict mu = MU, *restrict tr = TR, *restrict u = U;
    const float *restrict g = G;
    switch (PATTERN) {
    case STEP_DEFAULT:
        for (size_t i = lo; i < hi; i++) {
            float gi = g[i], n = a * nu[i] + b * gi * gi;
            nu[i] = n;
            p[i] += c * gi * n;
        }
        break;
    case UPDATE_DEFAULT:
        for (size_t i = lo; i < hi; i++) {
            float gi = g[i], n = a * nu[i] + b * gi * gi;
            nu[i] = n;
            u[i] = c * gi * n;
        }
        break;
    case STEP_CM:
        for (size_t i = lo; i < hi; i++) {
            float gi = g[i], n = a * nu[i] + b * gi * gi, m = a * mu[i] + b * gi;
            float t = a * tr[i] + c * gi * (n - m * m);
            nu[i] = n;
            mu[i] = m;
            tr[i] = t;
            p[i] += t;
        }
        break;
    default:
        for (size_t i = lo; i < hi; i++) {
            float gi = g[i], n = a * nu[i] + b * gi * gi, m = a * mu[i] + b * gi;
            float t = a * tr[i] + c * gi * (n - m * m);
            nu[i] = n;
            mu[i] = m;
            tr[i] = t;
            u[i] = t;
        }
    }
}

static void chunk(int tid, size_t *lo, size_t *hi) {
    size_t per = (N / (size_t)THREADS + 15) & ~(size_t)15; /* 64-byte aligned chunks */
    *lo = per * (size_t)tid;
    *hi = *lo + per;
    if (*lo > N) *lo = N;
    if (*hi > N || tid == THREADS - 1) *hi = N;
}

static void *worker(void *arg) {
    int tid = (int)(size_t)arg;
    size_t lo, hi;
    chunk(tid, &lo, &hi);
    for (;;) {
        pthread_barrier_wait(&BAR);
        if (STOP) return NULL;
        pass(lo, hi);
        pthread_barrier_wait(&BAR);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *alloc_f32(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* The probe as a library, also used by abi_bench's paired mode (#define PROBE_NO_MAIN). */
static int probe_pattern(const char *pat) {
    return !strcmp(pat, "step_default") ? STEP_DEFAULT
           : !strcmp(pat, "update_default") ? UPDATE_DEFAULT
           : !strcmp(pat, "step_cm") ? STEP_CM
           : !strcmp(pat, "update_cm") ? UPDATE_CM
           : -1;
}

static pthread_t *PROBE_TH;
static size_t PROBE_LO, PROBE_HI;
static float *RAW[6];

/* Array j starts j * 1088 bytes (17 cache lines) past a page boundary, so that the streams
 * never share their low 12 address bits (4K aliasing stalls loads behind unrelated stores on
 * Intel cores, which would make the ceiling too low). */
static float *offset_array(int j) {
    RAW[j] = alloc_f32(N + 6 * 272);
    return RAW[j] + (size_t)j * 272;
}

static void probe_setup(size_t n, int pattern, int threads) {
    N = n;
    PATTERN = pattern;
    THREADS = threads;
    P = offset_array(0), G = offset_array(1), NU = offset_array(2), MU = offset_array(3),
    TR = offset_array(4), U = offset_array(5);
    for (size_t i = 0; i < N; i++) P[i] = 0.5f, NU[i] = 0.0f, MU[i] = 0.0f, TR[i] = 0.0f, U[i] = 0.0f;
    for (size_t i = 0; i < N; i++) G[i] = (float)((i & 1 ? -1.0 : 1.0) * 1e-3 * (0.5 + (double)(i % 1000) / 1000.0));
    STOP = 0;
    pthread_barrier_init(&BAR, NULL, (unsigned)THREADS);
    PROBE_TH = malloc(sizeof(pthread_t) * (size_t)THREADS);
    for (int i = 1; i < THREADS; i++) pthread_create(&PROBE_TH[i], NULL, worker, (void *)(size_t)i);
    chunk(0, &PROBE_LO, &PROBE_HI);
}

/* One pass over all elements, on all probe threads. */
static void probe_run(void) {
    if (THREADS > 1) pthread_barrier_wait(&BAR);
    pass(PROBE_LO, PROBE_HI);
    if (THREADS > 1) pthread_barrier_wait(&BAR);
}

static void probe_teardown(void) {
    /* Keep the results observable so that no pass can be optimised away. */
    volatile float sink = P[N / 2] + NU[N / 3] + U[N / 4] + TR[N / 5];
    (void)sink;
    if (THREADS > 1) {
        STOP = 1;
        pthread_barrier_wait(&BAR);
        for (int i = 1; i < THREADS; i++) pthread_join(PROBE_TH[i], NULL);
    }
    pthread_barrier_destroy(&BAR);
    free(PROBE_TH);
    for (int j = 0; j < 6; j++) free(RAW[j]);
}

#ifndef PROBE_NO_MAIN
int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s N step_default|update_default|step_cm|update_cm THREADS SAMPLES\n", argv[0]);
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    int pattern = probe_pattern(argv[2]);
    int threads = atoi(argv[3]);
    int samples = atoi(argv[4]);
    if (pattern < 0 || threads < 1 || samples < 1 || n < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    probe_setup(n, pattern, threads);
    double t0 = now();
    int warm = 0;
    do {
        probe_run();
        warm++;
    } while (warm < 3 || (now() - t0 < 0.05 && warm < 1000));
    double one = (now() - t0) / warm;
    long batch = one >= 2e-3 ? 1 : (long)(2e-3 / one) + 1;
    double *t = malloc(sizeof(double) * (size_t)samples);
    for (int s = 0; s < samples; s++) {
        double a = now();
        for (long b = 0; b < batch; b++) probe_run();
        t[s] = (now() - a) / (double)batch;
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    double median = samples % 2 ? t[samples / 2] : 0.5 * (t[samples / 2 - 1] + t[samples / 2]);
    printf("%.9g %.9g %ld\n", median, t[0], batch);
    probe_teardown();
    free(t);
    return 0;
}
#endif
