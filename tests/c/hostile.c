/*
 * hostile.c: every entry point of the rmsprop C API fed hostile input.
 *
 * For every case: the exact status code, a non-empty rmsprop_last_error_message() that names
 * the offending argument (and is not left over from an earlier call), and proof that nothing
 * changed: the caller's buffers (one guarded arena, compared byte for byte), the optimizer
 * state (nu, mu, trace per tensor, both counts, skip counter, learning rate, thread setting,
 * read back through the API), out-pointers (sentinels), and hidden hyperparameters (each
 * handle has a twin built from the same options; after every case both take one identical
 * step and must still agree bit for bit). Options are checked the same way, through a
 * fingerprint optimizer built from them.
 *
 * Cases that could kill the process (huge allocations) run in a forked child; a child that
 * dies of a signal is a failure. Two threads on one handle must give RMSPROP_ERR_BUSY, never
 * a crash or a data race.
 *
 * Prints one line per case ("ok"/"FAIL"), a "status FUNCTION STATUS_NAME" line for every
 * non-OK status a function returned (tests/hostile.rs checks the header documents it), and a
 * final "N passed, M failed" line; exits 1 on any failure. Sizes are small so that the whole run fits under valgrind.
 *
 * Build (tests/hostile.rs does this, natively, with ASan+UBSan and under valgrind):
 *   cc -std=c11 -Wall -Wextra -Werror -DHOSTILE_CHECKPOINT -Iinclude tests/c/hostile.c \
 *      -Ltarget/release -lrmsprop -lpthread -lm -Wl,-rpath,$PWD/target/release -o hostile
 * (-DHOSTILE_CHECKPOINT adds tests/c/hostile_checkpoint.inc, for headers that declare the
 * checkpoint API; tests/c/hostile_pointers.inc holds the pointer-rule cases.) Each "ok"
 * line shows the status and message the library gave.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rmsprop.h"

/* Huge allocations must fail politely under AddressSanitizer too (they are expected). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ------------------------------------------------------------------------------------------ */
/* Reporting                                                                                  */

static int n_pass, n_fail;
static char g_msg[2048];   /* copy of the last error message, taken right after each call */
static char g_prime[2048]; /* the message planted before each call */

typedef struct {
    int ok;
    char why[1024];
} Verdict;

static void v_init(Verdict *v) {
    v->ok = 1;
    v->why[0] = 0;
}

__attribute__((format(printf, 2, 3))) static void v_fail(Verdict *v, const char *fmt, ...) {
    size_t used = strlen(v->why);
    if (used + 8 >= sizeof v->why) return;
    if (used) {
        strcat(v->why, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why + used, sizeof v->why - used, fmt, ap);
    va_end(ap);
    v->ok = 0;
}

static int g_checked = -1; /* status of the last check_status, for the "ok" line */

static void finish(const char *name, const Verdict *v) {
    if (v->ok) {
        n_pass++;
        if (g_checked >= RMSPROP_ERR_NULL_POINTER)
            printf("ok   %s -> %s: %s\n", name, rmsprop_status_name(g_checked), g_msg);
        else
            printf("ok   %s\n", name);
        g_checked = -1;
    } else {
        n_fail++;
        printf("FAIL %s: %s\n", name, v->why);
        g_checked = -1;
    }
    fflush(stdout);
}

/* The harness itself cannot go on (e.g. a handle was poisoned by an earlier case): count
 * it as a failure, print the summary line and stop. */
static void harness_abort(void) {
    n_fail++;
    printf("%d passed, %d failed\n", n_pass, n_fail);
    fflush(stdout);
    exit(1);
}

static void grab_msg(void) {
    const char *m = rmsprop_last_error_message();
    snprintf(g_msg, sizeof g_msg, "%s", m ? m : "(NULL pointer)");
}

/* Plant a known error message, so that a case cannot pass on a stale one. */
static void prime(void) {
    RmspropSchedule *s = NULL;
    RmspropStatus st = rmsprop_schedule_linear(0.0, 0.0, 0, INT64_C(77777777777), &s);
    if (st != RMSPROP_ERR_INVALID_SCHEDULE || s != NULL) {
        printf("FAIL harness: priming call returned %d\n", st);
        harness_abort();
    }
    grab_msg();
    memcpy(g_prime, g_msg, sizeof g_prime);
}

/* The text of the call whose status the next check_status sees, macros expanded
 * ("rmsprop_update_f32(full.h, G, U, 8)"). */
static const char *g_call = "";
#define STR_(x) #x
#define STR(x) STR_(x)

/* Record which function returned which status: a "status FUNCTION STATUS_NAME" line for
 * every status other than RMSPROP_OK. tests/hostile.rs checks that the header documents each
 * of them for that function. The function is the first rmsprop_* name called in the text. */
static void note_status(RmspropStatus got) {
    if (got == RMSPROP_OK) return;
    for (const char *p = strstr(g_call, "rmsprop_"); p; p = strstr(p + 1, "rmsprop_")) {
        if (p > g_call && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'))) continue;
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        const char *q = p + n;
        while (*q == ' ') q++;
        if (*q != '(') continue;
        printf("status %.*s %s\n", (int)n, p, rmsprop_status_name(got));
        return;
    }
}

/* Status, then message: non-empty, fresh, and naming the argument. */
#define check_status(v, got, want, needle) (g_call = STR(got), check_status_at(v, got, want, needle))
#define check_status_of(call, v, got, want, needle)                                        \
    (g_call = STR(call), check_status_at(v, got, want, needle))
static void check_status_at(Verdict *v, RmspropStatus got, RmspropStatus want,
                            const char *needle) {
    grab_msg();
    note_status(got);
    g_checked = got;
    if (got != want)
        v_fail(v, "status %s (%d), want %s (%d) [message: \"%s\"]", rmsprop_status_name(got),
               (int)got, rmsprop_status_name(want), (int)want, g_msg);
    if (want >= RMSPROP_ERR_NULL_POINTER) {
        if (g_msg[0] == 0)
            v_fail(v, "empty last error message");
        else if (strcmp(g_msg, g_prime) == 0)
            v_fail(v, "last error message was not updated (still \"%s\")", g_msg);
        else if (needle && !strstr(g_msg, needle))
            v_fail(v, "message \"%s\" does not mention \"%s\"", g_msg, needle);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots of an optimizer, read back through the API                                       */

typedef struct {
    unsigned char b[16384];
    size_t len;
    uint64_t skipped;
} Snap;

static void put(Snap *s, const void *p, size_t n) {
    if (s->len + n > sizeof s->b) {
        printf("FAIL harness: snapshot too large\n");
        harness_abort();
    }
    memcpy(s->b + s->len, p, n);
    s->len += n;
}

#define MUST(call)                                                                         \
    do {                                                                                   \
        RmspropStatus must_ = (call);                                                      \
        if (must_ != RMSPROP_OK) {                                                         \
            printf("FAIL harness: %s returned %s: %s\n", #call, rmsprop_status_name(must_),   \
                   rmsprop_last_error_message());                                          \
            harness_abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Read everything back; the first failing status is returned (a poisoned handle). */
#define TRY(call)                                                                          \
    do {                                                                                   \
        RmspropStatus try_ = (call);                                                       \
        if (try_ != RMSPROP_OK) return try_;                                               \
    } while (0)

static RmspropStatus snap_try(const RmspropOptimizer *h, Snap *s) {
    int32_t sc = -7, bc = -7;
    double lr = 0;
    size_t threads = 0, nt = 0, total = 0;
    RmspropDtype dt = 0;
    s->len = 0;
    TRY(rmsprop_dtype(h, &dt));
    TRY(rmsprop_num_tensors(h, &nt));
    TRY(rmsprop_total_elements(h, &total));
    TRY(rmsprop_get_counts(h, &sc, &bc));
    TRY(rmsprop_skipped_steps(h, &s->skipped));
    TRY(rmsprop_current_learning_rate(h, &lr));
    TRY(rmsprop_get_threads(h, &threads));
    put(s, &dt, sizeof dt);
    put(s, &nt, sizeof nt);
    put(s, &total, sizeof total);
    put(s, &sc, sizeof sc);
    put(s, &bc, sizeof bc);
    put(s, &lr, sizeof lr);
    put(s, &threads, sizeof threads);
    for (RmspropComponent c = RMSPROP_NU; c <= RMSPROP_TRACE; c++) {
        bool has = false;
        TRY(rmsprop_has_state(h, c, &has));
        put(s, &has, sizeof has);
        if (!has) continue;
        for (size_t t = 0; t < nt; t++) {
            size_t n = 0;
            TRY(rmsprop_tensor_size(h, t, &n));
            put(s, &n, sizeof n);
            double buf[64];
            if (n > 64) {
                printf("FAIL harness: tensor too large for a snapshot\n");
                harness_abort();
            }
            if (dt == RMSPROP_DTYPE_F32) {
                TRY(rmsprop_get_state_f32(h, c, t, (float *)buf, n));
                put(s, buf, n * sizeof(float));
            } else {
                TRY(rmsprop_get_state_f64(h, c, t, buf, n));
                put(s, buf, n * sizeof(double));
            }
        }
    }
    return RMSPROP_OK;
}

static void snap_take(const RmspropOptimizer *h, Snap *s) {
    RmspropStatus st = snap_try(h, s);
    if (st != RMSPROP_OK) {
        printf("FAIL harness: reading the optimizer back failed: %s: %s\n", rmsprop_status_name(st),
               rmsprop_last_error_message());
        harness_abort();
    }
}

static int snap_eq(const Snap *a, const Snap *b) {
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Fixtures: a handle, its twin, and a guarded arena holding every caller buffer              */

enum { FX_CENTERED = 1, FX_MOMENTUM = 2, FX_SCHEDULE = 4, FX_SKIP = 8 };
enum { OFF_P = 0, OFF_G = 256, OFF_U = 512, OFF_X = 768, ARENA = 1280 };
enum { REGION_U = 1, REGION_G = 2 };

typedef RmspropStatus (*LockstepFn)(RmspropOptimizer *, void *, const void *, size_t);

typedef struct {
    const char *label;
    RmspropOptimizer *h, *twin;
    RmspropDtype dtype;
    size_t esz, total;
    unsigned char *arena, *copy;
    Snap before;
    /* lockstep buffers: the handle's params, the twin's params, the gradients */
    double lock_p[64], lock_pt[64], lock_g[64];
    unsigned step_no;
    LockstepFn lockstep;
    size_t sizes[8], nt;
    int flags;
} Fix;

static void fill_elem(void *buf, size_t esz, size_t i, double v) {
    if (esz == sizeof(float))
        ((float *)buf)[i] = (float)v;
    else
        ((double *)buf)[i] = v;
}

static RmspropOptions *make_options(int flags) {
    RmspropOptions *o = NULL;
    MUST(rmsprop_options_new(0.01, &o));
    MUST(rmsprop_options_set_decay(o, 0.85));
    MUST(rmsprop_options_set_eps(o, 1e-6));
    MUST(rmsprop_options_set_initial_scale(o, 0.25));
    if (flags & FX_CENTERED) MUST(rmsprop_options_set_centered(o, true));
    if (flags & FX_MOMENTUM) {
        MUST(rmsprop_options_set_momentum(o, 0.9));
        MUST(rmsprop_options_set_nesterov(o, true));
        MUST(rmsprop_options_set_bias_correction(o, true));
    }
    if (flags & FX_SCHEDULE) {
        RmspropSchedule *s = NULL;
        MUST(rmsprop_schedule_warmup_cosine_decay(0.0, 0.02, 3, 50, 0.001, 1.0, &s));
        MUST(rmsprop_options_set_learning_rate_schedule(o, s));
        rmsprop_schedule_free(s);
    }
    if (flags & FX_SKIP) MUST(rmsprop_options_set_skip_non_finite(o, true));
    return o;
}

/* One identical step on the handle and its twin; afterwards they must agree bit for bit. */
static void lockstep(Fix *f, Verdict *v) {
    f->step_no++;
    for (size_t i = 0; i < f->total; i++)
        fill_elem(f->lock_g, f->esz, i, sin(0.7 * (double)(i + 1) * f->step_no) * 2.0);
    RmspropStatus a = f->lockstep(f->h, f->lock_p, f->lock_g, f->total);
    RmspropStatus b = f->lockstep(f->twin, f->lock_pt, f->lock_g, f->total);
    if (a != RMSPROP_OK || b != RMSPROP_OK) {
        v_fail(v, "lockstep step failed: %s / %s (%s)", rmsprop_status_name(a),
               rmsprop_status_name(b), rmsprop_last_error_message());
        return;
    }
    Snap sa, sb;
    snap_take(f->h, &sa);
    snap_take(f->twin, &sb);
    if (!snap_eq(&sa, &sb) || memcmp(f->lock_p, f->lock_pt, f->total * f->esz) != 0)
        v_fail(v, "hidden change: the handle and its untouched twin diverge after an identical "
                  "step (a hyperparameter or the state changed)");
}

/* (Re)create the handle and its twin, and take three identical steps. */
static void fx_handles(Fix *f) {
    RmspropOptions *o = make_options(f->flags);
    MUST(rmsprop_create(o, f->sizes, f->nt, f->dtype, &f->h));
    MUST(rmsprop_create(o, f->sizes, f->nt, f->dtype, &f->twin));
    rmsprop_options_free(o);
    /* One thread for the handle and its twin keeps valgrind fast; other settings are
     * exercised by the concurrency cases. */
    MUST(rmsprop_set_threads(f->h, 1));
    MUST(rmsprop_set_threads(f->twin, 1));
    f->step_no = 0;
    size_t esz = f->esz;
    for (size_t i = 0; i < f->total; i++) {
        fill_elem(f->lock_p, esz, i, 1.0 + 0.5 * (double)i);
        fill_elem(f->lock_pt, esz, i, 1.0 + 0.5 * (double)i);
    }
    /* A few steps so that nu, mu, trace and the counts are not at their initial values. */
    Verdict v;
    v_init(&v);
    for (int k = 0; k < 3; k++) lockstep(f, &v);
    if (!v.ok) {
        printf("FAIL harness: fixture %s: %s\n", f->label, v.why);
        harness_abort();
    }
}

/* A case left the handle unusable (poisoned): report it, then start over with fresh handles
 * so that the remaining cases still run. */
static void fx_rebuild(Fix *f) {
    rmsprop_destroy(f->h);
    rmsprop_destroy(f->twin);
    fx_handles(f);
}

static void fx_init(Fix *f, const char *label, RmspropDtype dt, size_t esz, const size_t *sizes,
                    size_t nt, int flags, LockstepFn fn) {
    memset(f, 0, sizeof *f);
    f->label = label;
    f->dtype = dt;
    f->esz = esz;
    f->lockstep = fn;
    f->flags = flags;
    f->nt = nt;
    for (size_t i = 0; i < nt; i++) {
        f->sizes[i] = sizes[i];
        f->total += sizes[i];
    }
    f->arena = aligned_alloc(64, ARENA);
    f->copy = malloc(ARENA);
    for (size_t i = 0; i < ARENA; i++) f->arena[i] = (unsigned char)(i * 131u + 7u);
    fx_handles(f);
}

static void fx_free(Fix *f) {
    rmsprop_destroy(f->h);
    rmsprop_destroy(f->twin);
    free(f->arena);
    free(f->copy);
}

static void fx_begin(Fix *f) {
    memcpy(f->copy, f->arena, ARENA);
    if (snap_try(f->h, &f->before) != RMSPROP_OK) {
        fx_rebuild(f);
        snap_take(f->h, &f->before);
    }
    prime();
}

static int region_of(size_t off) {
    if (off >= OFF_U && off < OFF_X) return REGION_U;
    if (off >= OFF_G && off < OFF_U) return REGION_G;
    return 0;
}

/* Everything unchanged: arena (except regions in `may_write`), state, hidden settings. */
static void fx_end(Fix *f, Verdict *v, int may_write, uint64_t skipped_delta) {
    for (size_t i = 0; i < ARENA; i++) {
        if (f->arena[i] != f->copy[i] && !(region_of(i) & may_write)) {
            v_fail(v, "caller buffer modified at arena byte %zu", i);
            break;
        }
    }
    Snap now;
    RmspropStatus st = snap_try(f->h, &now);
    if (st != RMSPROP_OK) {
        v_fail(v, "the handle is unusable after this call (%s: %s); fixture rebuilt",
               rmsprop_status_name(st), rmsprop_last_error_message());
        fx_rebuild(f);
        return;
    }
    if (!snap_eq(&now, &f->before)) v_fail(v, "optimizer state changed");
    if (now.skipped != f->before.skipped + skipped_delta)
        v_fail(v, "skip counter went from %" PRIu64 " to %" PRIu64 ", want +%" PRIu64,
               f->before.skipped, now.skipped, skipped_delta);
    lockstep(f, v);
}

#define HCASE(F, NAME, WANT, NEEDLE, CALL)                                                 \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        fx_begin(F);                                                                       \
        RmspropStatus s_ = (CALL);                                                         \
        check_status_of(CALL, &v_, s_, WANT, NEEDLE);                                      \
        fx_end(F, &v_, 0, 0);                                                              \
        finish(NAME, &v_);                                                                 \
    } while (0)

/* As HCASE, and `OUT` (size SZ) must still equal `REF` afterwards. */
#define HCASE_OUT(F, NAME, WANT, NEEDLE, CALL, OUT, REF, SZ)                               \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        fx_begin(F);                                                                       \
        RmspropStatus s_ = (CALL);                                                         \
        check_status_of(CALL, &v_, s_, WANT, NEEDLE);                                      \
        if (memcmp((OUT), (REF), (SZ)) != 0) v_fail(&v_, "out-pointer written on error");  \
        fx_end(F, &v_, 0, 0);                                                              \
        finish(NAME, &v_);                                                                 \
    } while (0)

/* A skipped non-finite step: status 1, nothing changed but the skip counter. */
#define SKIPCASE(F, NAME, CALL, MAY_WRITE)                                                 \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        fx_begin(F);                                                                       \
        RmspropStatus s_ = (CALL);                                                         \
        check_status_of(CALL, &v_, s_, RMSPROP_SKIPPED_NON_FINITE, NULL);                  \
        skip_note(F, NAME, MAY_WRITE);                                                     \
        fx_end(F, &v_, MAY_WRITE, 1);                                                      \
        finish(NAME, &v_);                                                                 \
    } while (0)

/* What a skipped update left in the caller's updates buffer (informational). */
static void skip_note(const Fix *f, const char *name, int region) {
    if (!region) return;
    size_t off = region == REGION_U ? OFF_U : OFF_G;
    size_t bytes = f->total * f->esz;
    int untouched = memcmp(f->arena + off, f->copy + off, bytes) == 0;
    int zeros = 1;
    for (size_t i = 0; i < bytes; i++) zeros &= f->arena[off + i] == 0;
    printf("info %s: the updates buffer was %s\n", name,
           untouched ? "left untouched (still holds the non-finite gradients when in place)"
           : zeros   ? "zeroed"
                     : "overwritten with other values");
}

/* ------------------------------------------------------------------------------------------ */
/* The typed suites                                                                           */

#define T float
#define SUF f32
#define DT RMSPROP_DTYPE_F32
#define OTHER_DT RMSPROP_DTYPE_F64
#define WRONG_NAME "f64"
#define OTHER_UPDATE(h, g, u, n) rmsprop_update_f64(h, (const double *)(g), (double *)(u), n)
#define OTHER_STEP(h, p, g, n) rmsprop_step_f64(h, (double *)(p), (const double *)(g), n)
#define OTHER_UPDATE_TENSORS(h, g, u, n)                                                   \
    rmsprop_update_tensors_f64(h, (const double *const *)(g), (double *const *)(u), n)
#define OTHER_STEP_TENSORS(h, p, g, n)                                                     \
    rmsprop_step_tensors_f64(h, (double *const *)(p), (const double *const *)(g), n)
#define OTHER_GET_STATE(h, c, t, o, n) rmsprop_get_state_f64(h, c, t, (double *)(o), n)
#define OTHER_SET_STATE(h, c, t, v, n) rmsprop_set_state_f64(h, c, t, (const double *)(v), n)
#include "hostile_typed.inc"
#undef T
#undef SUF
#undef DT
#undef OTHER_DT
#undef WRONG_NAME
#undef OTHER_UPDATE
#undef OTHER_STEP
#undef OTHER_UPDATE_TENSORS
#undef OTHER_STEP_TENSORS
#undef OTHER_GET_STATE
#undef OTHER_SET_STATE

#define T double
#define SUF f64
#define DT RMSPROP_DTYPE_F64
#define OTHER_DT RMSPROP_DTYPE_F32
#define WRONG_NAME "f32"
#define OTHER_UPDATE(h, g, u, n) rmsprop_update_f32(h, (const float *)(g), (float *)(u), n)
#define OTHER_STEP(h, p, g, n) rmsprop_step_f32(h, (float *)(p), (const float *)(g), n)
#define OTHER_UPDATE_TENSORS(h, g, u, n)                                                   \
    rmsprop_update_tensors_f32(h, (const float *const *)(g), (float *const *)(u), n)
#define OTHER_STEP_TENSORS(h, p, g, n)                                                     \
    rmsprop_step_tensors_f32(h, (float *const *)(p), (const float *const *)(g), n)
#define OTHER_GET_STATE(h, c, t, o, n) rmsprop_get_state_f32(h, c, t, (float *)(o), n)
#define OTHER_SET_STATE(h, c, t, v, n) rmsprop_set_state_f32(h, c, t, (const float *)(v), n)
#include "hostile_typed.inc"
#undef T
#undef SUF
#undef DT
#undef OTHER_DT
#undef WRONG_NAME
#undef OTHER_UPDATE
#undef OTHER_STEP
#undef OTHER_UPDATE_TENSORS
#undef OTHER_STEP_TENSORS
#undef OTHER_GET_STATE
#undef OTHER_SET_STATE

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */

/* A fingerprint of what options do: an f64 optimizer built from them, four steps (the last
 * with a NaN gradient), its state and parameters. Equal fingerprints = equal options. */
typedef struct {
    Snap s;
    double params[3];
    RmspropStatus last;
} OptFp;

static void opt_fp(const RmspropOptions *o, OptFp *fp) {
    const size_t sizes[1] = {3};
    RmspropOptimizer *h = NULL;
    memset(fp, 0, sizeof *fp);
    MUST(rmsprop_create(o, sizes, 1, RMSPROP_DTYPE_F64, &h));
    MUST(rmsprop_set_threads(h, 1));
    double p[3] = {1.0, -2.0, 3.0};
    for (int k = 0; k < 4; k++) {
        double g[3] = {0.5 * k - 0.75, 1.5, -0.25 * k};
        if (k == 3) g[1] = NAN;
        RmspropStatus st = rmsprop_step_f64(h, p, g, 3);
        if (st != RMSPROP_OK && st != RMSPROP_SKIPPED_NON_FINITE) {
            printf("FAIL harness: fingerprint step: %s\n", rmsprop_last_error_message());
            harness_abort();
        }
        fp->last = st;
    }
    snap_take(h, &fp->s);
    memcpy(fp->params, p, sizeof p);
    rmsprop_destroy(h);
}

static int fp_eq(const OptFp *a, const OptFp *b) {
    return snap_eq(&a->s, &b->s) && a->last == b->last &&
           memcmp(a->params, b->params, sizeof a->params) == 0;
}

#define OCASE(O, NAME, WANT, NEEDLE, CALL)                                                 \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        OptFp before_, after_;                                                             \
        opt_fp(O, &before_);                                                               \
        prime();                                                                           \
        RmspropStatus s_ = (CALL);                                                         \
        check_status_of(CALL, &v_, s_, WANT, NEEDLE);                                      \
        opt_fp(O, &after_);                                                                \
        if (!fp_eq(&before_, &after_)) v_fail(&v_, "the options changed");                 \
        finish(NAME, &v_);                                                                 \
    } while (0)

static void options_suite(void) {
    char name[256];
    RmspropOptions *o = make_options(FX_CENTERED | FX_MOMENTUM);
    RmspropOptions *sentinel = (RmspropOptions *)(uintptr_t)0xDEADBEE0u;

    /* rmsprop_options_new */
    {
        Verdict v;
        v_init(&v);
        prime();
        check_status(&v, rmsprop_options_new(0.1, NULL), RMSPROP_ERR_NULL_POINTER, "out");
        finish("options_new: NULL out", &v);
    }
    const double bad_lr[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        Verdict v;
        v_init(&v);
        RmspropOptions *out = sentinel;
        prime();
        check_status(&v, rmsprop_options_new(bad_lr[i], &out), RMSPROP_ERR_INVALID_HYPERPARAMETER,
                     "learning_rate");
        if (out != sentinel) v_fail(&v, "*out written on error");
        snprintf(name, sizeof name, "options_new: learning_rate %g", bad_lr[i]);
        finish(name, &v);
    }
    {
        /* A misaligned out-pointer: rejected, nothing allocated (valgrind/LSan check leaks). */
        _Alignas(16) unsigned char box[32];
        memset(box, 0x5A, sizeof box);
        unsigned char ref[32];
        memcpy(ref, box, sizeof box);
        Verdict v;
        v_init(&v);
        prime();
        check_status(&v, rmsprop_options_new(0.1, (RmspropOptions **)(box + 1)),
                     RMSPROP_ERR_MISALIGNED, "out");
        if (memcmp(box, ref, sizeof box) != 0) v_fail(&v, "misaligned *out written");
        finish("options_new: misaligned out (no leak)", &v);
    }

    /* Every setter with NULL options. */
    RmspropSchedule *cs = NULL;
    MUST(rmsprop_schedule_constant(0.5, &cs));
#define NULLOPT(label, call)                                                               \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        prime();                                                                           \
        check_status(&v_, (call), RMSPROP_ERR_NULL_POINTER, "options");                    \
        finish(label ": NULL options", &v_);                                               \
    } while (0)
    NULLOPT("options_set_learning_rate", rmsprop_options_set_learning_rate(NULL, 0.1));
    NULLOPT("options_set_learning_rate_schedule",
            rmsprop_options_set_learning_rate_schedule(NULL, cs));
    NULLOPT("options_set_decay", rmsprop_options_set_decay(NULL, 0.5));
    NULLOPT("options_set_eps", rmsprop_options_set_eps(NULL, 0.5));
    NULLOPT("options_set_initial_scale", rmsprop_options_set_initial_scale(NULL, 0.5));
    NULLOPT("options_set_eps_in_sqrt", rmsprop_options_set_eps_in_sqrt(NULL, false));
    NULLOPT("options_set_centered", rmsprop_options_set_centered(NULL, true));
    NULLOPT("options_set_momentum", rmsprop_options_set_momentum(NULL, 0.5));
    NULLOPT("options_clear_momentum", rmsprop_options_clear_momentum(NULL));
    NULLOPT("options_set_nesterov", rmsprop_options_set_nesterov(NULL, true));
    NULLOPT("options_set_bias_correction", rmsprop_options_set_bias_correction(NULL, true));
    NULLOPT("options_set_skip_non_finite", rmsprop_options_set_skip_non_finite(NULL, true));
    NULLOPT("options_set_weight_decay",
            rmsprop_options_set_weight_decay(NULL, 0.1, RMSPROP_WEIGHT_DECAY_COUPLED));
    NULLOPT("options_set_maximize", rmsprop_options_set_maximize(NULL, true));
    NULLOPT("options_set_flavor", rmsprop_options_set_flavor(NULL, RMSPROP_FLAVOR_PYTORCH));
    NULLOPT("options_set_clip", rmsprop_options_set_clip(NULL, 1.0));
    NULLOPT("options_set_clip_by_global_norm", rmsprop_options_set_clip_by_global_norm(NULL, 1.0));
#undef NULLOPT

    OCASE(o, "options_set_learning_rate_schedule: NULL schedule", RMSPROP_ERR_NULL_POINTER,
          "schedule", rmsprop_options_set_learning_rate_schedule(o, NULL));

    /* Bad values, each on options whose current values are all valid and non-default. */
    struct {
        const char *what;
        RmspropStatus (*fn)(RmspropOptions *, double);
        double value;
        const char *needle;
    } bad[] = {
        {"learning_rate", rmsprop_options_set_learning_rate, NAN, "learning_rate must be finite"},
        {"learning_rate", rmsprop_options_set_learning_rate, INFINITY, "learning_rate"},
        {"learning_rate", rmsprop_options_set_learning_rate, -INFINITY, "learning_rate"},
        {"decay", rmsprop_options_set_decay, 1.5, "decay must be in [0, 1], got 1.5"},
        {"decay", rmsprop_options_set_decay, -0.1, "decay must be in [0, 1]"},
        {"decay", rmsprop_options_set_decay, 1.0000000001, "decay"},
        {"decay", rmsprop_options_set_decay, NAN, "decay"},
        {"decay", rmsprop_options_set_decay, INFINITY, "decay"},
        {"eps", rmsprop_options_set_eps, -1.0, "eps must be finite and >= 0, got -1"},
        {"eps", rmsprop_options_set_eps, -1e-300, "eps"},
        {"eps", rmsprop_options_set_eps, NAN, "eps"},
        {"eps", rmsprop_options_set_eps, INFINITY, "eps"},
        {"initial_scale", rmsprop_options_set_initial_scale, -1.0, "initial_scale"},
        {"initial_scale", rmsprop_options_set_initial_scale, NAN, "initial_scale"},
        {"initial_scale", rmsprop_options_set_initial_scale, INFINITY, "initial_scale"},
        {"momentum", rmsprop_options_set_momentum, INFINITY, "momentum must be finite"},
        {"momentum", rmsprop_options_set_momentum, -INFINITY, "momentum"},
        {"momentum", rmsprop_options_set_momentum, NAN, "momentum"},
        {"clip", rmsprop_options_set_clip, -1.0, "max_delta must be finite and >= 0"},
        {"clip", rmsprop_options_set_clip, NAN, "max_delta"},
        {"clip_by_global_norm", rmsprop_options_set_clip_by_global_norm, -0.5, "max_norm"},
        {"clip_by_global_norm", rmsprop_options_set_clip_by_global_norm, NAN, "max_norm"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(name, sizeof name, "options_set_%s: %g", bad[i].what, bad[i].value);
        OCASE(o, name, RMSPROP_ERR_INVALID_HYPERPARAMETER, bad[i].needle, bad[i].fn(o, bad[i].value));
    }
    OCASE(o, "options_set_weight_decay: unknown kind", RMSPROP_ERR_BAD_ENUM, "weight decay kind",
          rmsprop_options_set_weight_decay(o, 0.1, 7));
    OCASE(o, "options_set_weight_decay: NaN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "weight_decay",
          rmsprop_options_set_weight_decay(o, NAN, RMSPROP_WEIGHT_DECAY_DECOUPLED));
    OCASE(o, "options_set_flavor: past the last flavor", RMSPROP_ERR_BAD_ENUM, "flavor",
          rmsprop_options_set_flavor(o, RMSPROP_FLAVOR_TF1 + 1));
    OCASE(o, "options_set_flavor: unknown", RMSPROP_ERR_BAD_ENUM, "flavor",
          rmsprop_options_set_flavor(o, -1));
    /* The PyTorch flavor has no nesterov: create refuses it, nothing is allocated. */
    {
        RmspropOptions *of = NULL;
        RmspropOptimizer *hf = NULL;
        size_t nf = 3;
        MUST(rmsprop_options_new(0.1, &of));
        MUST(rmsprop_options_set_momentum(of, 0.9));
        MUST(rmsprop_options_set_nesterov(of, true));
        MUST(rmsprop_options_set_flavor(of, RMSPROP_FLAVOR_PYTORCH));
        Verdict v_;
        v_init(&v_);
        prime();
        check_status(&v_, rmsprop_create(of, &nf, 1, RMSPROP_DTYPE_F32, &hf),
                     RMSPROP_ERR_INVALID_HYPERPARAMETER, "nesterov");
        if (hf) v_fail(&v_, "out written on error");
        finish("create: PyTorch flavor with nesterov", &v_);
        rmsprop_options_free(of);
    }
    /* Weight decay needs the parameters: the update entry points refuse it. */
    {
        RmspropOptions *ow = NULL;
        RmspropOptimizer *hw = NULL;
        size_t nw = 3;
        float g3[3] = {1, 2, 3}, u3[3] = {0, 0, 0};
        MUST(rmsprop_options_new(0.1, &ow));
        MUST(rmsprop_options_set_weight_decay(ow, 0.01, RMSPROP_WEIGHT_DECAY_COUPLED));
        MUST(rmsprop_create(ow, &nw, 1, RMSPROP_DTYPE_F32, &hw));
        Verdict v_;
        v_init(&v_);
        prime();
        check_status(&v_, rmsprop_update_f32(hw, g3, u3, 3), RMSPROP_ERR_NO_SUCH_STATE,
                     "weight decay needs the parameters");
        if (u3[0] != 0 || u3[1] != 0 || u3[2] != 0) v_fail(&v_, "updates written on error");
        finish("update_f32: weight decay set (needs the parameters)", &v_);
        rmsprop_destroy(hw);
        rmsprop_options_free(ow);
    }
    /* The same on options holding a schedule: the schedule must survive a bad fixed rate. */
    {
        RmspropOptions *os = make_options(FX_SCHEDULE);
        OCASE(os, "options_set_learning_rate: NaN keeps the schedule",
              RMSPROP_ERR_INVALID_HYPERPARAMETER, "learning_rate",
              rmsprop_options_set_learning_rate(os, NAN));
        rmsprop_options_free(os);
    }
    /* Options free/NULL are no-ops. */
    rmsprop_options_free(NULL);
    rmsprop_schedule_free(cs);
    rmsprop_options_free(o);
}

/* ------------------------------------------------------------------------------------------ */
/* Schedules                                                                                  */

#define SCHED_SENTINEL ((RmspropSchedule *)(uintptr_t)0xDEADBEE0u)
#define SCASE(NAME, WANT, NEEDLE, CALL_WITH_OUT)                                           \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        RmspropSchedule *sout = SCHED_SENTINEL;                                            \
        prime();                                                                           \
        RmspropStatus s_ = (CALL_WITH_OUT);                                                \
        check_status_of(CALL_WITH_OUT, &v_, s_, WANT, NEEDLE);                             \
        if (sout != SCHED_SENTINEL) {                                                      \
            v_fail(&v_, "*out written on error");                                          \
            if (s_ == RMSPROP_OK) rmsprop_schedule_free(sout);                             \
        }                                                                                  \
        finish(NAME, &v_);                                                                 \
    } while (0)

static void schedule_suite(void) {
    const int64_t big = (int64_t)INT32_MAX + 1, small = (int64_t)INT32_MIN - 1;
    const double nan = NAN, inf = INFINITY;
    _Alignas(16) unsigned char box[32];
    memset(box, 0, sizeof box);
    const double *end_mis = (const double *)(box + 1);
    const double end_nan = NAN;

    SCASE("schedule_constant: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_schedule_constant(1.0, NULL));
    SCASE("schedule_constant: NaN", RMSPROP_ERR_INVALID_SCHEDULE, "value must be finite",
          rmsprop_schedule_constant(nan, &sout));
    SCASE("schedule_constant: inf", RMSPROP_ERR_INVALID_SCHEDULE, "value must be finite",
          rmsprop_schedule_constant(inf, &sout));
    {
        _Alignas(16) unsigned char obox[32];
        memset(obox, 0x77, sizeof obox);
        unsigned char ref[32];
        memcpy(ref, obox, sizeof obox);
        Verdict v;
        v_init(&v);
        prime();
        check_status(&v, rmsprop_schedule_constant(1.0, (RmspropSchedule **)(obox + 1)),
                     RMSPROP_ERR_MISALIGNED, "out");
        if (memcmp(obox, ref, sizeof obox) != 0) v_fail(&v, "misaligned *out written");
        finish("schedule_constant: misaligned out (no leak)", &v);
    }

    SCASE("schedule_linear: NaN init_value", RMSPROP_ERR_INVALID_SCHEDULE, "init_value",
          rmsprop_schedule_linear(nan, 0.0, 10, 0, &sout));
    SCASE("schedule_linear: inf end_value", RMSPROP_ERR_INVALID_SCHEDULE, "end_value",
          rmsprop_schedule_linear(1.0, inf, 10, 0, &sout));
    SCASE("schedule_linear: transition_steps = INT32_MAX + 1", RMSPROP_ERR_INVALID_SCHEDULE,
          "transition_steps", rmsprop_schedule_linear(1.0, 0.0, big, 0, &sout));
    SCASE("schedule_linear: transition_steps = INT64_MIN", RMSPROP_ERR_INVALID_SCHEDULE,
          "transition_steps", rmsprop_schedule_linear(1.0, 0.0, INT64_MIN, 0, &sout));
    SCASE("schedule_linear: transition_begin = INT32_MIN - 1", RMSPROP_ERR_INVALID_SCHEDULE,
          "transition_begin", rmsprop_schedule_linear(1.0, 0.0, 10, small, &sout));
    SCASE("schedule_linear: transition_begin = INT64_MAX", RMSPROP_ERR_INVALID_SCHEDULE,
          "transition_begin", rmsprop_schedule_linear(1.0, 0.0, 10, INT64_MAX, &sout));
    SCASE("schedule_linear: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_schedule_linear(1.0, 0.0, 10, 0, NULL));

    SCASE("schedule_polynomial: NaN power", RMSPROP_ERR_INVALID_SCHEDULE, "power",
          rmsprop_schedule_polynomial(1.0, 0.0, nan, 10, 0, &sout));
    SCASE("schedule_polynomial: -inf power", RMSPROP_ERR_INVALID_SCHEDULE, "power",
          rmsprop_schedule_polynomial(1.0, 0.0, -inf, 10, 0, &sout));
    SCASE("schedule_polynomial: transition_steps beyond int32", RMSPROP_ERR_INVALID_SCHEDULE,
          "transition_steps", rmsprop_schedule_polynomial(1.0, 0.0, 2.0, big, 0, &sout));

    SCASE("schedule_exponential_decay: inf decay_rate", RMSPROP_ERR_INVALID_SCHEDULE,
          "decay_rate", rmsprop_schedule_exponential_decay(1.0, 10, inf, 0, false, NULL, &sout));
    SCASE("schedule_exponential_decay: NaN init_value", RMSPROP_ERR_INVALID_SCHEDULE,
          "init_value", rmsprop_schedule_exponential_decay(nan, 10, 0.5, 0, false, NULL, &sout));
    SCASE("schedule_exponential_decay: NaN end_value", RMSPROP_ERR_INVALID_SCHEDULE, "end_value",
          rmsprop_schedule_exponential_decay(1.0, 10, 0.5, 0, true, &end_nan, &sout));
    SCASE("schedule_exponential_decay: misaligned end_value", RMSPROP_ERR_MISALIGNED, "end_value",
          rmsprop_schedule_exponential_decay(1.0, 10, 0.5, 0, true, end_mis, &sout));
    SCASE("schedule_exponential_decay: transition_begin beyond int32",
          RMSPROP_ERR_INVALID_SCHEDULE, "transition_begin",
          rmsprop_schedule_exponential_decay(1.0, 10, 0.5, big, false, NULL, &sout));
    SCASE("schedule_exponential_decay: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_schedule_exponential_decay(1.0, 10, 0.5, 0, false, NULL, NULL));

    SCASE("schedule_cosine_decay: decay_steps = 0", RMSPROP_ERR_INVALID_SCHEDULE,
          "positive decay_steps, got 0", rmsprop_schedule_cosine_decay(1.0, 0, 0.0, 1.0, &sout));
    SCASE("schedule_cosine_decay: decay_steps = -5", RMSPROP_ERR_INVALID_SCHEDULE,
          "positive decay_steps, got -5", rmsprop_schedule_cosine_decay(1.0, -5, 0.0, 1.0, &sout));
    SCASE("schedule_cosine_decay: decay_steps beyond int32", RMSPROP_ERR_INVALID_SCHEDULE,
          "decay_steps", rmsprop_schedule_cosine_decay(1.0, big, 0.0, 1.0, &sout));
    SCASE("schedule_cosine_decay: NaN alpha", RMSPROP_ERR_INVALID_SCHEDULE, "alpha",
          rmsprop_schedule_cosine_decay(1.0, 10, nan, 1.0, &sout));
    SCASE("schedule_cosine_decay: inf exponent", RMSPROP_ERR_INVALID_SCHEDULE, "exponent",
          rmsprop_schedule_cosine_decay(1.0, 10, 0.0, inf, &sout));

    SCASE("schedule_warmup_cosine_decay: decay_steps == warmup_steps",
          RMSPROP_ERR_INVALID_SCHEDULE, "decay_steps > warmup_steps",
          rmsprop_schedule_warmup_cosine_decay(0.0, 1.0, 10, 10, 0.0, 1.0, &sout));
    SCASE("schedule_warmup_cosine_decay: decay_steps < warmup_steps",
          RMSPROP_ERR_INVALID_SCHEDULE, "decay_steps > warmup_steps",
          rmsprop_schedule_warmup_cosine_decay(0.0, 1.0, 10, 5, 0.0, 1.0, &sout));
    SCASE("schedule_warmup_cosine_decay: decay_steps = 0, warmup_steps = 0",
          RMSPROP_ERR_INVALID_SCHEDULE, "decay_steps",
          rmsprop_schedule_warmup_cosine_decay(0.0, 1.0, 0, 0, 0.0, 1.0, &sout));
    SCASE("schedule_warmup_cosine_decay: warmup_steps = INT64_MIN",
          RMSPROP_ERR_INVALID_SCHEDULE, "warmup_steps",
          rmsprop_schedule_warmup_cosine_decay(0.0, 1.0, INT64_MIN, 10, 0.0, 1.0, &sout));
    SCASE("schedule_warmup_cosine_decay: end_value / peak_value overflows",
          RMSPROP_ERR_INVALID_SCHEDULE, "end_value / peak_value",
          rmsprop_schedule_warmup_cosine_decay(0.0, 1e-308, 1, 10, 1e308, 1.0, &sout));
    SCASE("schedule_warmup_cosine_decay: NaN peak_value", RMSPROP_ERR_INVALID_SCHEDULE,
          "peak_value", rmsprop_schedule_warmup_cosine_decay(0.0, nan, 1, 10, 0.0, 1.0, &sout));

    SCASE("schedule_warmup_exponential_decay: warmup_steps beyond int32",
          RMSPROP_ERR_INVALID_SCHEDULE, "warmup_steps",
          rmsprop_schedule_warmup_exponential_decay(0.0, 1.0, big, 10, 0.5, 0, false, NULL,
                                                    &sout));
    SCASE("schedule_warmup_exponential_decay: NaN decay_rate", RMSPROP_ERR_INVALID_SCHEDULE,
          "decay_rate",
          rmsprop_schedule_warmup_exponential_decay(0.0, 1.0, 5, 10, nan, 0, false, NULL, &sout));
    SCASE("schedule_warmup_exponential_decay: misaligned end_value", RMSPROP_ERR_MISALIGNED,
          "end_value",
          rmsprop_schedule_warmup_exponential_decay(0.0, 1.0, 5, 10, 0.5, 0, false, end_mis,
                                                    &sout));

    {
        const int64_t unsorted[2] = {10, 5}, dup[2] = {5, 5}, ok_b[2] = {5, 10};
        const int64_t wide[2] = {5, big}, neg_wide[1] = {small};
        const double scales[2] = {0.5, 0.5}, neg[2] = {0.5, -0.5}, nans[2] = {0.5, NAN};
        SCASE("schedule_piecewise_constant: unsorted boundaries", RMSPROP_ERR_INVALID_SCHEDULE,
              "strictly increasing",
              rmsprop_schedule_piecewise_constant(1.0, unsorted, scales, 2, &sout));
        SCASE("schedule_piecewise_constant: duplicate boundaries", RMSPROP_ERR_INVALID_SCHEDULE,
              "strictly increasing",
              rmsprop_schedule_piecewise_constant(1.0, dup, scales, 2, &sout));
        SCASE("schedule_piecewise_constant: negative scale", RMSPROP_ERR_INVALID_SCHEDULE,
              "non-negative scales, got -0.5",
              rmsprop_schedule_piecewise_constant(1.0, ok_b, neg, 2, &sout));
        SCASE("schedule_piecewise_constant: NaN scale", RMSPROP_ERR_INVALID_SCHEDULE, "scale",
              rmsprop_schedule_piecewise_constant(1.0, ok_b, nans, 2, &sout));
        SCASE("schedule_piecewise_constant: boundary beyond int32", RMSPROP_ERR_INVALID_SCHEDULE,
              "boundary", rmsprop_schedule_piecewise_constant(1.0, wide, scales, 2, &sout));
        SCASE("schedule_piecewise_constant: boundary below int32", RMSPROP_ERR_INVALID_SCHEDULE,
              "boundary", rmsprop_schedule_piecewise_constant(1.0, neg_wide, scales, 1, &sout));
        SCASE("schedule_piecewise_constant: NULL boundaries", RMSPROP_ERR_NULL_POINTER,
              "boundaries", rmsprop_schedule_piecewise_constant(1.0, NULL, scales, 2, &sout));
        SCASE("schedule_piecewise_constant: NULL scales", RMSPROP_ERR_NULL_POINTER, "scales",
              rmsprop_schedule_piecewise_constant(1.0, ok_b, NULL, 2, &sout));
        SCASE("schedule_piecewise_constant: count = SIZE_MAX", RMSPROP_ERR_OVERFLOW, "boundaries",
              rmsprop_schedule_piecewise_constant(1.0, ok_b, scales, SIZE_MAX, &sout));
        SCASE("schedule_piecewise_constant: misaligned boundaries", RMSPROP_ERR_MISALIGNED,
              "boundaries",
              rmsprop_schedule_piecewise_constant(1.0, (const int64_t *)(box + 1), scales, 1,
                                                  &sout));
        SCASE("schedule_piecewise_constant: NaN init_value", RMSPROP_ERR_INVALID_SCHEDULE,
              "init_value", rmsprop_schedule_piecewise_constant(nan, NULL, NULL, 0, &sout));
    }

    {
        RmspropSchedule *a = NULL, *b = NULL, *c = NULL;
        MUST(rmsprop_schedule_constant(1.0, &a));
        MUST(rmsprop_schedule_linear(1.0, 0.1, 10, 0, &b));
        MUST(rmsprop_schedule_cosine_decay(0.1, 100, 0.0, 1.0, &c));
        const RmspropSchedule *two[2] = {a, b}, *three[3] = {a, b, c}, *with_null[3] = {a, NULL, c};
        const int64_t b1[1] = {10}, b2[2] = {10, 20}, b2u[2] = {20, 10}, bw[1] = {big};
        SCASE("schedule_join: 2 schedules, 0 boundaries", RMSPROP_ERR_INVALID_SCHEDULE,
              "one boundary fewer than schedules",
              rmsprop_schedule_join(two, 2, NULL, 0, &sout));
        SCASE("schedule_join: 2 schedules, 2 boundaries", RMSPROP_ERR_INVALID_SCHEDULE,
              "one boundary fewer than schedules", rmsprop_schedule_join(two, 2, b2, 2, &sout));
        SCASE("schedule_join: 3 schedules, 1 boundary", RMSPROP_ERR_INVALID_SCHEDULE,
              "one boundary fewer than schedules", rmsprop_schedule_join(three, 3, b1, 1, &sout));
        SCASE("schedule_join: unsorted boundaries", RMSPROP_ERR_INVALID_SCHEDULE,
              "boundaries must be sorted", rmsprop_schedule_join(three, 3, b2u, 2, &sout));
        SCASE("schedule_join: NULL inside the list", RMSPROP_ERR_NULL_POINTER, "schedules[i]",
              rmsprop_schedule_join(with_null, 3, b2, 2, &sout));
        SCASE("schedule_join: NULL list", RMSPROP_ERR_NULL_POINTER, "schedules",
              rmsprop_schedule_join(NULL, 2, b1, 1, &sout));
        SCASE("schedule_join: NULL boundaries", RMSPROP_ERR_NULL_POINTER, "boundaries",
              rmsprop_schedule_join(two, 2, NULL, 1, &sout));
        SCASE("schedule_join: no schedules", RMSPROP_ERR_INVALID_SCHEDULE,
              "at least one schedule", rmsprop_schedule_join(NULL, 0, NULL, 0, &sout));
        SCASE("schedule_join: boundary beyond int32", RMSPROP_ERR_INVALID_SCHEDULE, "boundary",
              rmsprop_schedule_join(two, 2, bw, 1, &sout));
        SCASE("schedule_join: num_schedules = SIZE_MAX", RMSPROP_ERR_OVERFLOW, "schedules",
              rmsprop_schedule_join(two, SIZE_MAX, b1, 1, &sout));
        SCASE("schedule_join: num_boundaries = SIZE_MAX", RMSPROP_ERR_OVERFLOW, "boundaries",
              rmsprop_schedule_join(two, 2, b1, SIZE_MAX, &sout));
        SCASE("schedule_join: misaligned list", RMSPROP_ERR_MISALIGNED, "schedules",
              rmsprop_schedule_join((const RmspropSchedule *const *)((const char *)two + 1), 2, b1,
                                    1, &sout));
        SCASE("schedule_join: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
              rmsprop_schedule_join(two, 2, b1, 1, NULL));

        /* rmsprop_schedule_value */
        const int32_t bad_dt[3] = {0, 5, -1};
        for (int i = 0; i < 3; i++) {
            char name[128], needle[64];
            double out = 12345.0;
            Verdict v;
            v_init(&v);
            prime();
            snprintf(needle, sizeof needle, "dtype value %d", (int)bad_dt[i]);
            check_status(&v, rmsprop_schedule_value(b, 3, bad_dt[i], &out), RMSPROP_ERR_BAD_ENUM,
                         needle);
            if (out != 12345.0) v_fail(&v, "*out written on error");
            snprintf(name, sizeof name, "schedule_value: dtype %d", (int)bad_dt[i]);
            finish(name, &v);
        }
        {
            double out = 12345.0;
            Verdict v;
            v_init(&v);
            prime();
            check_status(&v, rmsprop_schedule_value(NULL, 3, RMSPROP_DTYPE_F32, &out),
                         RMSPROP_ERR_NULL_POINTER, "schedule");
            if (out != 12345.0) v_fail(&v, "*out written on error");
            finish("schedule_value: NULL schedule", &v);
            v_init(&v);
            prime();
            check_status(&v, rmsprop_schedule_value(b, 3, RMSPROP_DTYPE_F32, NULL),
                         RMSPROP_ERR_NULL_POINTER, "out");
            finish("schedule_value: NULL out", &v);
            v_init(&v);
            prime();
            check_status(&v, rmsprop_schedule_value(b, 3, RMSPROP_DTYPE_F64, (double *)(box + 1)),
                         RMSPROP_ERR_MISALIGNED, "out");
            finish("schedule_value: misaligned out", &v);
        }
        /* Any int32 count is valid input: negative and extreme counts must give a value,
         * never a crash, for every kind of schedule. */
        {
            RmspropSchedule *all[9] = {0};
            const int64_t pb[2] = {3, 7};
            const double ps[2] = {0.5, 0.1};
            const double endv = 0.01;
            MUST(rmsprop_schedule_constant(0.1, &all[0]));
            MUST(rmsprop_schedule_linear(0.1, 0.01, 10, 5, &all[1]));
            MUST(rmsprop_schedule_polynomial(0.1, 0.01, 2.5, 10, -5, &all[2]));
            MUST(rmsprop_schedule_exponential_decay(0.1, 10, 0.5, 3, true, &endv, &all[3]));
            MUST(rmsprop_schedule_cosine_decay(0.1, 10, 0.1, 2.0, &all[4]));
            MUST(rmsprop_schedule_warmup_cosine_decay(0.0, 0.1, 3, 20, 0.001, 1.0, &all[5]));
            MUST(rmsprop_schedule_warmup_exponential_decay(0.0, 0.1, 3, 5, 0.5, 2, false, NULL,
                                                           &all[6]));
            MUST(rmsprop_schedule_piecewise_constant(0.1, pb, ps, 2, &all[7]));
            const RmspropSchedule *parts[3] = {all[1], all[5], all[7]};
            const int64_t jb[2] = {4, 4};
            MUST(rmsprop_schedule_join(parts, 3, jb, 2, &all[8]));
            const int32_t counts[6] = {INT32_MIN, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
            Verdict v;
            v_init(&v);
            for (int s = 0; s < 9; s++)
                for (int k = 0; k < 6; k++)
                    for (int d = RMSPROP_DTYPE_F32; d <= RMSPROP_DTYPE_F64; d++) {
                        double out = 0;
                        RmspropStatus st = rmsprop_schedule_value(all[s], counts[k], d, &out);
                        if (st != RMSPROP_OK)
                            v_fail(&v, "schedule %d at count %d: %s", s, (int)counts[k],
                                   rmsprop_status_name(st));
                    }
            finish("schedule_value: every schedule at counts INT32_MIN, -1, 0, 1, INT32_MAX", &v);
            for (int s = 0; s < 9; s++) rmsprop_schedule_free(all[s]);
        }
        rmsprop_schedule_free(a);
        rmsprop_schedule_free(b);
        rmsprop_schedule_free(c);
        rmsprop_schedule_free(NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* rmsprop_create                                                                             */

#define OPT_SENTINEL ((RmspropOptimizer *)(uintptr_t)0xDEADBEE0u)
#define CCASE(NAME, WANT, NEEDLE, CALL_WITH_HOUT)                                          \
    do {                                                                                   \
        Verdict v_;                                                                        \
        v_init(&v_);                                                                       \
        RmspropOptimizer *hout = OPT_SENTINEL;                                             \
        prime();                                                                           \
        RmspropStatus s_ = (CALL_WITH_HOUT);                                               \
        check_status_of(CALL_WITH_HOUT, &v_, s_, WANT, NEEDLE);                            \
        if (hout != OPT_SENTINEL) {                                                        \
            v_fail(&v_, "*out written on error");                                          \
            if (s_ == RMSPROP_OK) rmsprop_destroy(hout);                                   \
        }                                                                                  \
        finish(NAME, &v_);                                                                 \
    } while (0)

static void create_suite(void) {
    RmspropOptions *o = make_options(FX_CENTERED);
    const size_t sizes[3] = {3, 0, 5};
    const size_t overflow2[2] = {SIZE_MAX, 1};
    const size_t overflow3[3] = {SIZE_MAX / 2, SIZE_MAX / 2, 2};
    _Alignas(16) unsigned char box[64];
    memset(box, 0, sizeof box);

    CCASE("create: NULL options", RMSPROP_ERR_NULL_POINTER, "options",
          rmsprop_create(NULL, sizes, 3, RMSPROP_DTYPE_F32, &hout));
    CCASE("create: NULL sizes with 3 tensors", RMSPROP_ERR_NULL_POINTER, "sizes",
          rmsprop_create(o, NULL, 3, RMSPROP_DTYPE_F32, &hout));
    CCASE("create: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_create(o, sizes, 3, RMSPROP_DTYPE_F32, NULL));
    CCASE("create: misaligned sizes", RMSPROP_ERR_MISALIGNED, "sizes",
          rmsprop_create(o, (const size_t *)(box + 1), 2, RMSPROP_DTYPE_F32, &hout));
    const int32_t bad_dt[5] = {0, 5, -1, INT32_MIN, INT32_MAX};
    for (int i = 0; i < 5; i++) {
        char name[128], needle[64];
        snprintf(name, sizeof name, "create: dtype %d", (int)bad_dt[i]);
        snprintf(needle, sizeof needle, "dtype value %d", (int)bad_dt[i]);
        CCASE(name, RMSPROP_ERR_BAD_ENUM, needle, rmsprop_create(o, sizes, 3, bad_dt[i], &hout));
    }
    CCASE("create: num_tensors = SIZE_MAX", RMSPROP_ERR_OVERFLOW, "sizes",
          rmsprop_create(o, sizes, SIZE_MAX, RMSPROP_DTYPE_F32, &hout));
    CCASE("create: num_tensors = SIZE_MAX / 8 + 1 (byte size overflows)", RMSPROP_ERR_OVERFLOW,
          "sizes", rmsprop_create(o, sizes, SIZE_MAX / 8 + 1, RMSPROP_DTYPE_F32, &hout));
    CCASE("create: sizes {SIZE_MAX, 1} (total overflows)", RMSPROP_ERR_OVERFLOW, "overflow",
          rmsprop_create(o, overflow2, 2, RMSPROP_DTYPE_F32, &hout));
    CCASE("create: sizes {SIZE_MAX/2, SIZE_MAX/2, 2} (total overflows)", RMSPROP_ERR_OVERFLOW,
          "overflow", rmsprop_create(o, overflow3, 3, RMSPROP_DTYPE_F64, &hout));
    {
        /* Misaligned out: rejected, and the optimizer it would have held is not leaked. */
        _Alignas(16) unsigned char obox[32];
        memset(obox, 0x33, sizeof obox);
        unsigned char ref[32];
        memcpy(ref, obox, sizeof obox);
        Verdict v;
        v_init(&v);
        prime();
        check_status(&v, rmsprop_create(o, sizes, 3, RMSPROP_DTYPE_F32,
                                        (RmspropOptimizer **)(obox + 1)),
                     RMSPROP_ERR_MISALIGNED, "out");
        if (memcmp(obox, ref, sizeof obox) != 0) v_fail(&v, "misaligned *out written");
        finish("create: misaligned out (no leak)", &v);
    }
    rmsprop_destroy(NULL);
    rmsprop_options_free(o);
}

/* Cases that may kill the process if the library gets them wrong: run them in a child. */
typedef struct {
    int32_t status;
    int out_untouched;
    char msg[512];
} ChildResult;

static void child_create(const char *name, const size_t *sizes, size_t nt, RmspropDtype dt,
                         int any_error, RmspropStatus want, const char *needle) {
    int fds[2];
    if (pipe(fds) != 0) {
        printf("FAIL harness: pipe\n");
        harness_abort();
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL harness: fork\n");
        harness_abort();
    }
    if (pid == 0) {
        close(fds[0]);
        ChildResult r;
        memset(&r, 0, sizeof r);
        RmspropOptions *o = NULL;
        if (rmsprop_options_new(0.01, &o) != RMSPROP_OK) _exit(3);
        RmspropOptimizer *h = OPT_SENTINEL;
        r.status = rmsprop_create(o, sizes, nt, dt, &h);
        r.out_untouched = h == OPT_SENTINEL;
        snprintf(r.msg, sizeof r.msg, "%s", rmsprop_last_error_message());
        if (r.status == RMSPROP_OK) rmsprop_destroy(h);
        rmsprop_options_free(o);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(4);
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    ChildResult r;
    memset(&r, 0, sizeof r);
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int wst = 0;
    waitpid(pid, &wst, 0);
    Verdict v;
    v_init(&v);
    if (WIFSIGNALED(wst)) {
        v_fail(&v, "the library killed the process: signal %d (%s)", WTERMSIG(wst),
               WTERMSIG(wst) == 6 ? "SIGABRT: allocation failure or panic=abort" : "crash");
    } else if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || got != (ssize_t)sizeof r) {
        v_fail(&v, "child exited with status %d", WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    } else {
        if (any_error) {
            if (r.status == RMSPROP_OK || r.status == RMSPROP_SKIPPED_NON_FINITE)
                v_fail(&v, "status %s, want an error", rmsprop_status_name(r.status));
            else if (r.status == RMSPROP_ERR_INTERNAL)
                v_fail(&v, "status RMSPROP_ERR_INTERNAL (a caught panic) [message: \"%s\"]",
                       r.msg);
            if (!r.msg[0]) v_fail(&v, "empty last error message");
        } else if (r.status != want) {
            v_fail(&v, "status %s (%d), want %s [message: \"%s\"]", rmsprop_status_name(r.status),
                   (int)r.status, rmsprop_status_name(want), r.msg);
        } else if (needle && !strstr(r.msg, needle)) {
            v_fail(&v, "message \"%s\" does not mention \"%s\"", r.msg, needle);
        }
        if (!r.out_untouched) v_fail(&v, "*out written on error");
        if (v.ok) printf("info %s: %s: %s\n", name, rmsprop_status_name(r.status), r.msg);
    }
    finish(name, &v);
}

static void child_suite(void) {
    /* Element counts that fit in size_t but whose byte size does not fit in isize. */
    const size_t half[1] = {SIZE_MAX / 2};
    const size_t eighths[2] = {SIZE_MAX / 8, SIZE_MAX / 8};
    child_create("create: sizes {SIZE_MAX/2} f32 (byte size overflows)", half, 1,
                 RMSPROP_DTYPE_F32, 0, RMSPROP_ERR_OVERFLOW, "overflow");
    child_create("create: sizes {SIZE_MAX/8, SIZE_MAX/8} f64 (byte size overflows)", eighths, 2,
                 RMSPROP_DTYPE_F64, 0, RMSPROP_ERR_OVERFLOW, "overflow");
    /* 2^45 floats = 128 TiB: no machine can allocate it; the call must fail, not abort. */
    const size_t huge[1] = {(size_t)1 << 45};
    child_create("create: sizes {2^45} f32 (128 TiB: allocation fails)", huge, 1,
                 RMSPROP_DTYPE_F32, 1, 0, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Handle-level functions (dtype independent)                                                  */

static RmspropStatus lockstep_f32_generic(RmspropOptimizer *h, void *p, const void *g, size_t n) {
    return rmsprop_step_f32(h, (float *)p, (const float *)g, n);
}

typedef union {
    _Alignas(16) unsigned char b[32];
    uint64_t u;
    double d;
    size_t z;
    int32_t i[8];
    bool bo;
} OutBox;

static void handle_suite(void) {
    const size_t sizes[3] = {3, 0, 5};
    Fix f, plain;
    fx_init(&f, "full", RMSPROP_DTYPE_F32, sizeof(float), sizes, 3,
            FX_CENTERED | FX_MOMENTUM | FX_SCHEDULE, lockstep_f32_generic);
    fx_init(&plain, "plain", RMSPROP_DTYPE_F32, sizeof(float), sizes, 3, 0, lockstep_f32_generic);
    OutBox box, ref;
    memset(&box, 0xC3, sizeof box);
    ref = box;
    RmspropOptimizer *mis = (RmspropOptimizer *)((char *)f.h + 1);

#define QCASE(NAME, WANT, NEEDLE, CALL)                                                    \
    do {                                                                                   \
        box = ref;                                                                         \
        HCASE_OUT(&f, NAME, WANT, NEEDLE, CALL, &box, &ref, sizeof box);                   \
    } while (0)
    QCASE("dtype: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_dtype(NULL, (RmspropDtype *)box.i));
    QCASE("dtype: misaligned optimizer", RMSPROP_ERR_MISALIGNED, "optimizer",
          rmsprop_dtype(mis, (RmspropDtype *)box.i));
    QCASE("dtype: NULL out", RMSPROP_ERR_NULL_POINTER, "out", rmsprop_dtype(f.h, NULL));
    QCASE("dtype: misaligned out", RMSPROP_ERR_MISALIGNED, "out",
          rmsprop_dtype(f.h, (RmspropDtype *)(box.b + 1)));
    QCASE("num_tensors: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_num_tensors(NULL, &box.z));
    QCASE("num_tensors: NULL out", RMSPROP_ERR_NULL_POINTER, "out", rmsprop_num_tensors(f.h, NULL));
    QCASE("num_tensors: misaligned out", RMSPROP_ERR_MISALIGNED, "out",
          rmsprop_num_tensors(f.h, (size_t *)(box.b + 1)));
    QCASE("total_elements: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_total_elements(NULL, &box.z));
    QCASE("total_elements: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_total_elements(f.h, NULL));
    QCASE("tensor_size: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_tensor_size(NULL, 0, &box.z));
    QCASE("tensor_size: tensor 3 of 3", RMSPROP_ERR_OUT_OF_RANGE,
          "tensor index 3 is out of range for a layout of 3 tensors",
          rmsprop_tensor_size(f.h, 3, &box.z));
    QCASE("tensor_size: tensor SIZE_MAX", RMSPROP_ERR_OUT_OF_RANGE, "tensor index",
          rmsprop_tensor_size(f.h, SIZE_MAX, &box.z));
    QCASE("tensor_size: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_tensor_size(f.h, 0, NULL));
    QCASE("has_state: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_has_state(NULL, RMSPROP_NU, &box.bo));
    QCASE("has_state: component 0", RMSPROP_ERR_BAD_ENUM, "component value 0",
          rmsprop_has_state(f.h, 0, &box.bo));
    QCASE("has_state: component 4", RMSPROP_ERR_BAD_ENUM, "component value 4",
          rmsprop_has_state(f.h, 4, &box.bo));
    QCASE("has_state: component INT32_MIN", RMSPROP_ERR_BAD_ENUM, "component value",
          rmsprop_has_state(f.h, INT32_MIN, &box.bo));
    QCASE("has_state: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_has_state(f.h, RMSPROP_NU, NULL));
    QCASE("get_counts: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_get_counts(NULL, &box.i[0], &box.i[1]));
    QCASE("get_counts: misaligned schedule_count", RMSPROP_ERR_MISALIGNED, "schedule_count",
          rmsprop_get_counts(f.h, (int32_t *)(box.b + 1), &box.i[2]));
    QCASE("get_counts: misaligned bias_correction_count (schedule_count not written)",
          RMSPROP_ERR_MISALIGNED, "bias_correction_count",
          rmsprop_get_counts(f.h, &box.i[0], (int32_t *)(box.b + 9)));
    QCASE("skipped_steps: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_skipped_steps(NULL, &box.u));
    QCASE("skipped_steps: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_skipped_steps(f.h, NULL));
    QCASE("current_learning_rate: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_current_learning_rate(NULL, &box.d));
    QCASE("current_learning_rate: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
          rmsprop_current_learning_rate(f.h, NULL));
    QCASE("current_learning_rate: misaligned out", RMSPROP_ERR_MISALIGNED, "out",
          rmsprop_current_learning_rate(f.h, (double *)(box.b + 4)));
    QCASE("get_threads: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_get_threads(NULL, &box.z));
    QCASE("get_threads: NULL out", RMSPROP_ERR_NULL_POINTER, "out", rmsprop_get_threads(f.h, NULL));
#undef QCASE

    /* Counts */
    HCASE(&f, "set_counts: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_counts(NULL, 1, 1));
    HCASE(&f, "set_counts: schedule count -1", RMSPROP_ERR_INVALID_HYPERPARAMETER,
          "schedule count", rmsprop_set_counts(f.h, -1, 5));
    HCASE(&f, "set_counts: bias-correction count -1", RMSPROP_ERR_INVALID_HYPERPARAMETER,
          "bias-correction count", rmsprop_set_counts(f.h, 5, -1));
    HCASE(&f, "set_counts: INT32_MIN, INT32_MIN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "count",
          rmsprop_set_counts(f.h, INT32_MIN, INT32_MIN));
    HCASE(&f, "reset: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer", rmsprop_reset(NULL));

    /* Gradient transforms on the handle */
    {
        bool m[64] = {0};
        HCASE(&f, "set_weight_decay_mask: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
              rmsprop_set_weight_decay_mask(NULL, m, f.nt));
        HCASE(&f, "set_weight_decay_mask: NULL mask", RMSPROP_ERR_NULL_POINTER, "mask",
              rmsprop_set_weight_decay_mask(f.h, NULL, f.nt));
        HCASE(&f, "set_weight_decay_mask: one flag too many", RMSPROP_ERR_LENGTH_MISMATCH, "mask",
              rmsprop_set_weight_decay_mask(f.h, m, f.nt + 1));
    }
    {
        double d = 0;
        HCASE(&f, "last_grad_norm: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
              rmsprop_last_grad_norm(NULL, &d));
        HCASE(&f, "last_grad_norm: NULL out", RMSPROP_ERR_NULL_POINTER, "out",
              rmsprop_last_grad_norm(f.h, NULL));
    }

    /* Hyperparameter setters on the handle */
    RmspropSchedule *sch = NULL;
    MUST(rmsprop_schedule_constant(0.5, &sch));
    HCASE(&f, "set_learning_rate: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_learning_rate(NULL, 0.1));
    HCASE(&f, "set_learning_rate: NaN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "learning_rate",
          rmsprop_set_learning_rate(f.h, NAN));
    HCASE(&f, "set_learning_rate: inf", RMSPROP_ERR_INVALID_HYPERPARAMETER, "learning_rate",
          rmsprop_set_learning_rate(f.h, INFINITY));
    HCASE(&f, "set_learning_rate: -inf", RMSPROP_ERR_INVALID_HYPERPARAMETER, "learning_rate",
          rmsprop_set_learning_rate(f.h, -INFINITY));
    HCASE(&f, "set_learning_rate_schedule: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_learning_rate_schedule(NULL, sch));
    HCASE(&f, "set_learning_rate_schedule: NULL schedule", RMSPROP_ERR_NULL_POINTER, "schedule",
          rmsprop_set_learning_rate_schedule(f.h, NULL));
    HCASE(&f, "set_decay: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_decay(NULL, 0.5));
    HCASE(&f, "set_decay: 1.5", RMSPROP_ERR_INVALID_HYPERPARAMETER, "decay must be in [0, 1], got 1.5",
          rmsprop_set_decay(f.h, 1.5));
    HCASE(&f, "set_decay: -0.5", RMSPROP_ERR_INVALID_HYPERPARAMETER, "decay",
          rmsprop_set_decay(f.h, -0.5));
    HCASE(&f, "set_decay: NaN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "decay",
          rmsprop_set_decay(f.h, NAN));
    HCASE(&f, "set_decay: inf", RMSPROP_ERR_INVALID_HYPERPARAMETER, "decay",
          rmsprop_set_decay(f.h, INFINITY));
    HCASE(&f, "set_eps: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_eps(NULL, 0.5));
    HCASE(&f, "set_eps: -1", RMSPROP_ERR_INVALID_HYPERPARAMETER, "eps must be finite and >= 0",
          rmsprop_set_eps(f.h, -1.0));
    HCASE(&f, "set_eps: NaN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "eps",
          rmsprop_set_eps(f.h, NAN));
    HCASE(&f, "set_eps: inf", RMSPROP_ERR_INVALID_HYPERPARAMETER, "eps",
          rmsprop_set_eps(f.h, INFINITY));
    HCASE(&f, "set_momentum: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_momentum(NULL, 0.5));
    HCASE(&f, "set_momentum: inf", RMSPROP_ERR_INVALID_HYPERPARAMETER, "momentum must be finite",
          rmsprop_set_momentum(f.h, INFINITY));
    HCASE(&f, "set_momentum: NaN", RMSPROP_ERR_INVALID_HYPERPARAMETER, "momentum",
          rmsprop_set_momentum(f.h, NAN));
    HCASE(&plain, "set_momentum: on an optimizer without momentum", RMSPROP_ERR_NO_SUCH_STATE,
          "`trace`", rmsprop_set_momentum(plain.h, 0.5));
    HCASE(&f, "set_threads: NULL optimizer", RMSPROP_ERR_NULL_POINTER, "optimizer",
          rmsprop_set_threads(NULL, 2));
    rmsprop_schedule_free(sch);

    /* Positive controls: the checks above would notice a change. */
    {
        Verdict v;
        v_init(&v);
        Snap a, b;
        snap_take(f.h, &a);
        MUST(rmsprop_set_decay(f.h, 0.5));
        MUST(rmsprop_set_decay(f.twin, 0.5));
        snap_take(f.h, &b);
        if (!snap_eq(&a, &b)) v_fail(&v, "set_decay changed the snapshot (it should not)");
        fx_begin(&f);
        float *P = (float *)(f.arena + OFF_P), *G = (float *)(f.arena + OFF_G);
        RmspropStatus st = rmsprop_step_f32(f.h, P, G, 8);
        if (st != RMSPROP_OK) v_fail(&v, "control step failed: %s", rmsprop_status_name(st));
        snap_take(f.h, &b);
        if (snap_eq(&f.before, &b)) v_fail(&v, "a successful step did not change the snapshot");
        if (memcmp(f.arena, f.copy, ARENA) == 0) v_fail(&v, "a successful step wrote nothing");
        finish("control: a successful step is visible to the checks", &v);
        /* bring the twin back in sync */
        MUST(rmsprop_step_f32(f.twin, (float *)(f.copy + OFF_P), (const float *)(f.copy + OFF_G),
                              8));
        v_init(&v);
        lockstep(&f, &v);
        finish("control: the twin check passes after identical calls", &v);
    }
    {
        /* Legal but unusual: NULL pointers for empty tensors, overlapping *read-only*
         * gradients, the whole list in place, n = 0 state reads of the empty tensor,
         * both count pointers NULL. */
        Verdict v;
        v_init(&v);
        float *U = (float *)(f.arena + OFF_U), *X = (float *)(f.arena + OFF_X);
        for (int i = 0; i < 32; i++) X[i] = 0.25f * (float)(i % 7) - 0.5f;
        /* grads overlap each other (allowed); the empty tensor's pointers are wild */
        const float *g_shared[3] = {X, (const float *)(uintptr_t)0x1, X + 1};
        float *u_ok[3] = {U, (float *)(uintptr_t)0x3, U + 3};
        RmspropStatus st = rmsprop_update_tensors_f32(f.h, g_shared, u_ok, 3);
        if (st != RMSPROP_OK) v_fail(&v, "overlapping read-only grads: %s", rmsprop_last_error_message());
        float *inplace[3] = {X + 8, NULL, X + 11};
        st = rmsprop_update_tensors_f32(f.h, (const float *const *)inplace, inplace, 3);
        if (st != RMSPROP_OK) v_fail(&v, "all in place: %s", rmsprop_last_error_message());
        st = rmsprop_update_f32(f.h, X + 16, X + 16, 8);
        if (st != RMSPROP_OK) v_fail(&v, "flat in place: %s", rmsprop_last_error_message());
        st = rmsprop_get_state_f32(f.h, RMSPROP_NU, 1, NULL, 0);
        if (st != RMSPROP_OK) v_fail(&v, "n = 0 read of the empty tensor: %s", rmsprop_last_error_message());
        st = rmsprop_set_state_f32(f.h, RMSPROP_TRACE, 1, NULL, 0);
        if (st != RMSPROP_OK) v_fail(&v, "n = 0 write of the empty tensor: %s", rmsprop_last_error_message());
        st = rmsprop_get_counts(f.h, NULL, NULL);
        if (st != RMSPROP_OK) v_fail(&v, "get_counts(NULL, NULL): %s", rmsprop_last_error_message());
        finish("control: legal edge cases are accepted", &v);
    }
    {
        /* A layout of no tensors: every flat buffer is empty, NULL is fine. */
        Verdict v;
        v_init(&v);
        RmspropOptions *o = make_options(0);
        RmspropOptimizer *h = NULL;
        MUST(rmsprop_create(o, NULL, 0, RMSPROP_DTYPE_F64, &h));
        rmsprop_options_free(o);
        if (rmsprop_step_f64(h, NULL, NULL, 0) != RMSPROP_OK) v_fail(&v, "empty step");
        if (rmsprop_update_tensors_f64(h, NULL, NULL, 0) != RMSPROP_OK) v_fail(&v, "empty list");
        prime();
        double d[1] = {0};
        check_status(&v, rmsprop_step_f64(h, d, d + 1, 1), RMSPROP_ERR_LENGTH_MISMATCH,
                     "expected 0 elements, got 1");
        prime();
        check_status(&v, rmsprop_get_state_f64(h, RMSPROP_NU, 0, d, 0), RMSPROP_ERR_OUT_OF_RANGE,
                     "tensor index 0");
        rmsprop_destroy(h);
        finish("empty layout: n = 1 and tensor 0 are rejected, empty calls accepted", &v);
    }
    {
        Verdict v;
        v_init(&v);
        const char *u1 = rmsprop_status_name(-1), *u2 = rmsprop_status_name(23),
                   *u3 = rmsprop_status_name(INT32_MIN);
        if (!u1 || strcmp(u1, "RMSPROP_UNKNOWN_STATUS") || !u2 || strcmp(u2, "RMSPROP_UNKNOWN_STATUS") ||
            !u3 || strcmp(u3, "RMSPROP_UNKNOWN_STATUS"))
            v_fail(&v, "unknown status names: %s %s %s", u1, u2, u3);
        if (strcmp(rmsprop_status_name(RMSPROP_ERR_BUSY), "RMSPROP_ERR_BUSY"))
            v_fail(&v, "RMSPROP_ERR_BUSY name");
        if (rmsprop_version_number() != RMSPROP_VERSION_NUMBER)
            v_fail(&v, "library version %u, header %d", rmsprop_version_number(),
                   RMSPROP_VERSION_NUMBER);
        if (strcmp(rmsprop_version_string(), RMSPROP_VERSION_STRING))
            v_fail(&v, "version string %s", rmsprop_version_string());
        finish("status_name(-1 / 23 / INT32_MIN) and versions", &v);
    }
    fx_free(&f);
    fx_free(&plain);
}

/* ------------------------------------------------------------------------------------------ */
/* Two threads on one handle                                                                  */

enum { BIG = 1 << 16 };

typedef struct {
    RmspropOptimizer *h;
    float *p, *g;
    atomic_int stop, iters, ok, busy, other;
    char first_other[256];
} Worker;

static double now_s(void);

static void *worker_main(void *arg) {
    Worker *w = arg;
    double t0 = now_s();
    /* Bounded: stops when told, after 2,000,000 attempts, or after 120 s. */
    while (!atomic_load(&w->stop) && atomic_load(&w->iters) < 2000000 && now_s() - t0 < 120.0) {
        RmspropStatus s = rmsprop_step_f32(w->h, w->p, w->g, BIG);
        atomic_fetch_add(&w->iters, 1);
        if (s == RMSPROP_OK)
            atomic_fetch_add(&w->ok, 1);
        else if (s == RMSPROP_ERR_BUSY)
            atomic_fetch_add(&w->busy, 1);
        else if (atomic_fetch_add(&w->other, 1) == 0)
            snprintf(w->first_other, sizeof w->first_other, "%s: %s", rmsprop_status_name(s),
                     rmsprop_last_error_message());
    }
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const RmspropOptimizer *h;
    int bad;
    char why[256];
} Reader;

static void *reader_main(void *arg) {
    Reader *r = arg;
    float *nu = malloc(BIG / 2 * sizeof(float));
    for (int i = 0; i < 200; i++) {
        int32_t sc = 0, bc = 0;
        RmspropStatus a = rmsprop_get_counts(r->h, &sc, &bc);
        RmspropStatus b = rmsprop_get_state_f32(r->h, RMSPROP_NU, 1, nu, BIG / 2);
        if ((a != RMSPROP_OK || b != RMSPROP_OK) && r->bad++ == 0)
            snprintf(r->why, sizeof r->why, "%s / %s", rmsprop_status_name(a),
                     rmsprop_status_name(b));
    }
    free(nu);
    return NULL;
}

static void *error_thread(void *arg) {
    char *out = arg;
    /* A failure on this thread must not change the main thread's message. */
    rmsprop_set_decay(NULL, 2.0);
    snprintf(out, 256, "%s", rmsprop_last_error_message());
    return NULL;
}

static void thread_suite(void) {
    RmspropOptions *o = make_options(FX_MOMENTUM);
    const size_t sizes[2] = {BIG / 2, BIG / 2};
    RmspropOptimizer *h = NULL;
    MUST(rmsprop_create(o, sizes, 2, RMSPROP_DTYPE_F32, &h));
    rmsprop_options_free(o);
    MUST(rmsprop_set_threads(h, 1));

    Worker w;
    memset(&w, 0, sizeof w);
    w.h = h;
    w.p = calloc(BIG, sizeof(float));
    w.g = malloc(BIG * sizeof(float));
    float *p2 = calloc(BIG, sizeof(float)), *g2 = malloc(BIG * sizeof(float));
    float *p2_copy = malloc(BIG * sizeof(float));
    for (size_t i = 0; i < BIG; i++) w.g[i] = g2[i] = 0.001f * (float)(i % 1000) - 0.5f;
    atomic_store(&w.stop, 0);
    atomic_store(&w.iters, 0);
    atomic_store(&w.ok, 0);
    atomic_store(&w.busy, 0);
    atomic_store(&w.other, 0);

    pthread_t th;
    if (pthread_create(&th, NULL, worker_main, &w) != 0) {
        printf("FAIL harness: pthread_create\n");
        harness_abort();
    }
    Verdict v;
    v_init(&v);
    int busy = 0, ok = 0, other = 0, busy_reads = 0, ok_reads = 0, msg_bad = 0, params_bad = 0;
    double t0 = now_s();
    float *nu = malloc(BIG / 2 * sizeof(float));
    long attempts = 0;
    /* Main alternates one step with a few reads; the worker steps in a loop. Either side may
     * find the handle busy; every status must be OK or BUSY. Bounded in time and count. */
    while (now_s() - t0 < 60.0 && attempts < 1000000L) {
        attempts++;
        memcpy(p2_copy, p2, BIG * sizeof(float));
        RmspropStatus s = rmsprop_step_f32(h, p2, g2, BIG);
        if (s == RMSPROP_ERR_BUSY) {
            busy++;
            const char *m = rmsprop_last_error_message();
            if (!m || !strstr(m, "in use by another thread")) msg_bad++;
            if (memcmp(p2, p2_copy, BIG * sizeof(float)) != 0) params_bad++;
        } else if (s == RMSPROP_OK) {
            ok++;
        } else {
            other++;
        }
        for (int k = 0; k < 4; k++) {
            RmspropStatus r = rmsprop_get_state_f32(h, RMSPROP_TRACE, 1, nu, BIG / 2);
            if (r == RMSPROP_ERR_BUSY)
                busy_reads++;
            else if (r == RMSPROP_OK)
                ok_reads++;
            else
                other++;
        }
        if (busy + atomic_load(&w.busy) >= 3 && busy_reads >= 3) break;
    }
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    free(nu);
    int w_ok = atomic_load(&w.ok), w_busy = atomic_load(&w.busy), w_other = atomic_load(&w.other);
    printf("info two threads, one handle: main steps ok=%d busy=%d, main reads ok=%d busy=%d, "
           "worker steps ok=%d busy=%d, %ld rounds, %.2f s\n",
           ok, busy, ok_reads, busy_reads, w_ok, w_busy, attempts, now_s() - t0);
    if (busy + w_busy == 0) v_fail(&v, "no RMSPROP_ERR_BUSY observed for concurrent steps");
    if (busy_reads == 0) printf("note: no RMSPROP_ERR_BUSY seen for a read during a step (timing-dependent; not a failure)\n");
    if (other || w_other)
        v_fail(&v, "unexpected statuses (main %d, worker %d: %s)", other, w_other, w.first_other);
    if (msg_bad) v_fail(&v, "%d BUSY results without the 'in use' message", msg_bad);
    if (params_bad) v_fail(&v, "%d BUSY results wrote the caller's params", params_bad);
    /* After both threads stopped the counts must equal the successful steps. */
    int32_t sc = 0, bc = 0;
    MUST(rmsprop_get_counts(h, &sc, &bc));
    if (sc != ok + w_ok || bc != ok + w_ok)
        v_fail(&v, "counts %d/%d after %d successful steps", (int)sc, (int)bc, ok + w_ok);
    finish("threads: a step racing another step gets RMSPROP_ERR_BUSY, never a crash", &v);

    /* Concurrent const calls never conflict with each other. */
    {
        Verdict v2;
        v_init(&v2);
        Reader r1 = {h, 0, ""}, r2 = {h, 0, ""};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, reader_main, &r1);
        pthread_create(&t2, NULL, reader_main, &r2);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        if (r1.bad || r2.bad)
            v_fail(&v2, "concurrent const calls failed %d+%d times (%s%s)", r1.bad, r2.bad, r1.why,
                   r2.why);
        finish("threads: two readers at once never get BUSY", &v2);
    }
    /* The last error message is per thread. */
    {
        Verdict v3;
        v_init(&v3);
        prime();
        char other_msg[256] = "";
        pthread_t t;
        pthread_create(&t, NULL, error_thread, other_msg);
        pthread_join(t, NULL);
        grab_msg();
        if (strcmp(g_msg, g_prime) != 0)
            v_fail(&v3, "main thread's message changed to \"%s\"", g_msg);
        if (!strstr(other_msg, "optimizer"))
            v_fail(&v3, "the other thread's message is \"%s\"", other_msg);
        finish("threads: last error message is per thread", &v3);
    }
    /* A handle-owned pool of 2 threads is created and torn down cleanly. */
    {
        Verdict v4;
        v_init(&v4);
        MUST(rmsprop_set_threads(h, 2));
        for (int k = 0; k < 3; k++)
            if (rmsprop_step_f32(h, p2, g2, BIG) != RMSPROP_OK) v_fail(&v4, "pooled step failed");
        MUST(rmsprop_set_threads(h, 0));
        if (rmsprop_step_f32(h, p2, g2, BIG) != RMSPROP_OK) v_fail(&v4, "global-pool step failed");
        size_t t = 9;
        MUST(rmsprop_get_threads(h, &t));
        if (t != 0) v_fail(&v4, "get_threads = %zu after set_threads(0)", t);
        finish("threads: owned pool of 2, then the global pool", &v4);
    }
    rmsprop_destroy(h);
    free(w.p);
    free(w.g);
    free(p2);
    free(g2);
    free(p2_copy);
}

#ifdef HOSTILE_CHECKPOINT
#include "hostile_checkpoint.inc"
#endif
#include "hostile_pointers.inc"

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("rmsprop %s (header %s): hostile input\n", rmsprop_version_string(),
           RMSPROP_VERSION_STRING);
    child_suite(); /* first, before any thread exists: fork() with rayon threads is unsafe */
    options_suite();
    schedule_suite();
    create_suite();
    handle_suite();
    typed_suite_f32();
    typed_suite_f64();
#ifdef HOSTILE_CHECKPOINT
    checkpoint_suite();
#else
    printf("info checkpoint cases not compiled (build with -DHOSTILE_CHECKPOINT)\n");
#endif
    pointer_suite();
    thread_suite();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
