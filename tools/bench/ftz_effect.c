/*
 * ftz_effect: what flushing subnormals changes, on scenarios where values get subnormal.
 * Run it twice, with RMSPROP_FTZ=1 (the default) and RMSPROP_FTZ=0, and compare the dumps
 * (compare.py --ftz-effect does both and prints the comparison).
 *
 *   ftz_effect OUT_FILE
 *
 * Scenarios (f32, 100k elements each, 2000 steps of the fused step, optax defaults and
 * centered+momentum):
 *   dead    ordinary gradients for 100 steps, then exactly zero for a third of the elements
 *           (dead units): their nu decays by 0.9 per step into the subnormal range
 *   tiny    gradients of 1e-25 .. 1e-19 throughout: g*g is subnormal or underflows
 * Writes, per scenario and configuration, params then nu (float32, native order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmsprop.h"

#define N 100000
#define STEPS 2000

static void check(RmspropStatus s, const char *what) {
    if (s != RMSPROP_OK) {
        fprintf(stderr, "%s: %s\n", what, rmsprop_last_error_message());
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT_FILE\n", argv[0]);
        return 2;
    }
    FILE *out = fopen(argv[1], "wb");
    if (!out) return 2;
    float *p = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float)), *nu = malloc(N * sizeof(float));
    size_t sizes[1] = {N};
    for (int scenario = 0; scenario < 2; scenario++) {
        for (int cm = 0; cm < 2; cm++) {
            RmspropOptions *o;
            check(rmsprop_options_new(1e-3, &o), "options");
            if (cm) {
                check(rmsprop_options_set_centered(o, true), "centered");
                check(rmsprop_options_set_momentum(o, 0.9), "momentum");
            }
            RmspropOptimizer *opt;
            check(rmsprop_create(o, sizes, 1, RMSPROP_DTYPE_F32, &opt), "create");
            rmsprop_options_free(o);
            check(rmsprop_set_threads(opt, 1), "threads");
            for (size_t i = 0; i < N; i++) p[i] = 0.5f + (float)(i % 97) * 1e-3f;
            for (int s = 0; s < STEPS; s++) {
                for (size_t i = 0; i < N; i++) {
                    unsigned h = (unsigned)(i * 2654435761u) ^ (unsigned)(s * 40503u);
                    double u = (double)(h >> 8) / (double)(1u << 24);
                    double sign = (h & 1) ? -1.0 : 1.0;
                    if (scenario == 0)
                        g[i] = (s >= 100 && i % 3 == 0) ? 0.0f : (float)(sign * 1e-2 * (0.1 + u));
                    else
                        g[i] = (float)(sign * 1e-25 * __builtin_pow(10.0, 6.0 * u));
                }
                check(rmsprop_step_f32(opt, p, g, N), "step");
            }
            check(rmsprop_get_state_f32(opt, RMSPROP_NU, 0, nu, N), "nu");
            fwrite(p, sizeof(float), N, out);
            fwrite(nu, sizeof(float), N, out);
            rmsprop_destroy(opt);
        }
    }
    fclose(out);
    return 0;
}
