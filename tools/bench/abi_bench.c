/*
 * abi_bench: times this library's fused step (rmsprop_step_f32 / rmsprop_step_tensors_f32)
 * or update (rmsprop_update_f32 / rmsprop_update_tensors_f32) through the C ABI.
 *
 *   abi_bench N TENSORS CONFIG MODE THREADS SAMPLES [GRAD_SCALE [paired]]
 *     N        total f32 elements
 *     TENSORS  1 = one flat buffer; k > 1 = N split into k tensors, one list call
 *     CONFIG   default (optax.rmsprop(1e-3)) | cm (centered=True, momentum=0.9)
 *              | xf (default behind clip_by_global_norm(1.0), clip(10.0) and, for the step,
 *                coupled weight decay 1e-4; paired with the default pattern's probe)
 *     MODE     step | update
 *     THREADS  rmsprop_set_threads: 1 = the calling thread only, k > 1 = a pool of k
 *     SAMPLES  timed samples; each sample is a batch of calls lasting >= ~2 ms
 *     GRAD_SCALE gradient magnitude (default 1e-3; 1e-21 keeps nu subnormal)
 *     paired   also run stream_probe.c's pass of the same pattern (MODE_CONFIG) on THREADS
 *              threads, alternating with the library sample by sample, so that both see
 *              the same machine state (other load on a shared machine hits both)
 *
 * Prints one line: "median_s min_s batch" (seconds per call), in paired mode followed by
 * "probe_median_s probe_min_s probe_batch ratio_median", where ratio = probe time / library
 * time per sample pair (the fraction of the ceiling reached). Built by compare.py and
 * scaling.sh with: cc -O3 -march=x86-64-v3 -pthread abi_bench.c -Iinclude -L<dir> -lrmsprop
 * -Wl,-rpath,<dir>
 */
#define _POSIX_C_SOURCE 200809L

#include "rmsprop.h"

#define PROBE_NO_MAIN
#include "stream_probe.c"



static void check(RmspropStatus s, const char *what) {
    if (s != RMSPROP_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, rmsprop_status_name(s), rmsprop_last_error_message());
        exit(2);
    }
}


int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s N TENSORS default|cm step|update THREADS SAMPLES [GRAD_SCALE]\n", argv[0]);
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    size_t tensors = strtoull(argv[2], NULL, 10);
    int cm = strcmp(argv[3], "cm") == 0;
    int xf = strcmp(argv[3], "xf") == 0;
    int step = strcmp(argv[4], "step") == 0;
    size_t threads = strtoull(argv[5], NULL, 10);
    int samples = atoi(argv[6]);
    double scale = argc > 7 ? atof(argv[7]) : 1e-3;
    int paired = argc > 8 && strcmp(argv[8], "paired") == 0;
    if (tensors < 1 || tensors > n || samples < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }

    size_t *sizes = malloc(tensors * sizeof(size_t));
    for (size_t i = 0; i < tensors; i++) sizes[i] = n / tensors;
    sizes[tensors - 1] += n - (n / tensors) * tensors;

    RmspropOptions *o;
    check(rmsprop_options_new(1e-3, &o), "options");
    if (cm) {
        check(rmsprop_options_set_centered(o, true), "centered");
        check(rmsprop_options_set_momentum(o, 0.9), "momentum");
    }
    if (xf) {
        /* optax.chain(clip_by_global_norm(1.0), clip(10.0), add_decayed_weights(1e-4),
         * rmsprop(1e-3)); weight decay needs the parameters, so only for the step. */
        check(rmsprop_options_set_clip_by_global_norm(o, 1.0), "clip_by_global_norm");
        check(rmsprop_options_set_clip(o, 10.0), "clip");
        if (step) check(rmsprop_options_set_weight_decay(o, 1e-4, RMSPROP_WEIGHT_DECAY_COUPLED), "wd");
    }
    RmspropOptimizer *opt;
    check(rmsprop_create(o, sizes, tensors, RMSPROP_DTYPE_F32, &opt), "create");
    rmsprop_options_free(o);
    check(rmsprop_set_threads(opt, threads), "threads");

    /* Distinct offsets from a page boundary (0, 1088, 2176 bytes), as buffers of a real
     * trainer would have, so that no two streams alias at 4 KiB. */
    float *params_raw = alloc_f32(n + 1024), *grads_raw = alloc_f32(n + 1024),
          *updates_raw = alloc_f32(n + 1024);
    float *params = params_raw, *grads = grads_raw + 272, *updates = updates_raw + 544;
    for (size_t i = 0; i < n; i++) {
        double u = (double)((uint32_t)(i * 2654435761u) >> 8) / (double)(1u << 24);
        grads[i] = (float)((i & 1 ? -1.0 : 1.0) * scale * (0.5 + u));
        params[i] = 0.5f;
        updates[i] = 0.0f;
    }
    float **plist = malloc(tensors * sizeof(float *));
    float **ulist = malloc(tensors * sizeof(float *));
    const float **glist = malloc(tensors * sizeof(float *));
    for (size_t i = 0, off = 0; i < tensors; off += sizes[i], i++) {
        plist[i] = params + off;
        ulist[i] = updates + off;
        glist[i] = grads + off;
    }

#define CALL()                                                                                 \
    do {                                                                                       \
        RmspropStatus s_;                                                                      \
        if (tensors == 1)                                                                      \
            s_ = step ? rmsprop_step_f32(opt, params, grads, n)                                \
                      : rmsprop_update_f32(opt, grads, updates, n);                            \
        else                                                                                   \
            s_ = step ? rmsprop_step_tensors_f32(opt, plist, glist, tensors)                   \
                      : rmsprop_update_tensors_f32(opt, glist, ulist, tensors);                \
        if (s_ != RMSPROP_OK) check(s_, "step");                                               \
    } while (0)

    /* Warm up (pages touched, pool started, nu near its steady state), then size a batch. */
    double t0 = now();
    int warm = 0;
    do {
        CALL();
        warm++;
    } while (warm < 3 || (now() - t0 < 0.05 && warm < 1000));
    double one = (now() - t0) / warm;
    long batch = one >= 2e-3 ? 1 : (long)(2e-3 / one) + 1;

    long pbatch = 0;
    if (paired) {
        char pat[32];
        snprintf(pat, sizeof pat, "%s_%s", step ? "step" : "update", cm ? "cm" : "default");
        probe_setup(n, probe_pattern(pat), (int)(threads ? threads : 1));
        double p0 = now();
        int pw = 0;
        do {
            probe_run();
            pw++;
        } while (pw < 3 || (now() - p0 < 0.05 && pw < 1000));
        double pone = (now() - p0) / pw;
        pbatch = pone >= 2e-3 ? 1 : (long)(2e-3 / pone) + 1;
    }

    double *t = malloc((size_t)samples * sizeof(double));
    double *pt = malloc((size_t)samples * sizeof(double));
    double *ratio = malloc((size_t)samples * sizeof(double));
    for (int s = 0; s < samples; s++) {
        double a = now();
        for (long b = 0; b < batch; b++) CALL();
        t[s] = (now() - a) / (double)batch;
        if (paired) {
            a = now();
            for (long b = 0; b < pbatch; b++) probe_run();
            pt[s] = (now() - a) / (double)pbatch;
            ratio[s] = pt[s] / t[s];
        }
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    double median = samples % 2 ? t[samples / 2] : 0.5 * (t[samples / 2 - 1] + t[samples / 2]);
    printf("%.9g %.9g %ld", median, t[0], batch);
    if (paired) {
        qsort(pt, (size_t)samples, sizeof(double), cmp_double);
        qsort(ratio, (size_t)samples, sizeof(double), cmp_double);
        double pm = samples % 2 ? pt[samples / 2] : 0.5 * (pt[samples / 2 - 1] + pt[samples / 2]);
        double rm = samples % 2 ? ratio[samples / 2] : 0.5 * (ratio[samples / 2 - 1] + ratio[samples / 2]);
        printf(" %.9g %.9g %ld %.6f", pm, pt[0], pbatch, rm);
        probe_teardown();
    }
    printf("\n");
    free(pt);
    free(ratio);

    rmsprop_destroy(opt);
    free(params_raw);
    free(grads_raw);
    free(updates_raw);
    free(plist);
    free(ulist);
    free(glist);
    free(sizes);
    free(t);
    return 0;
}
