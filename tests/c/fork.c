/* fork() safety: handles whose thread pools existed before fork() must step in the child,
 * to the same bits as the parent.
 *
 * The parent creates two handles, one on rayon's global pool (threads 0) and one with its
 * own pool (threads 2), and warms both with a step large enough to run in parallel (so both
 * pools exist). Then it forks. The child steps both handles once more, sends a hash of each
 * result through a pipe, also creates a new handle, changes a thread setting and destroys
 * a pool-owning handle (none of which may hang), forks a grandchild that steps too, and
 * exits. The parent takes the same step on its own copies and compares the hashes. A child
 * that has not finished after the time limit (argv[1] seconds) is killed: that is a hang,
 * and the test fails. Prints one line per check; exits 0 only if all pass. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rmsprop.h"

#define N ((size_t)1 << 20) /* above the parallel threshold of 64 Ki elements */

static int failures = 0;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (cond) {                                                                          \
            printf("ok   ");                                                                 \
        } else {                                                                             \
            printf("FAIL ");                                                                 \
            failures++;                                                                      \
        }                                                                                    \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        fflush(stdout);                                                                      \
    } while (0)

static uint64_t fnv1a(const float *x, size_t n) {
    const unsigned char *b = (const unsigned char *)x;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static float *params, *grads, *work;

static void fill(void) {
    uint32_t s = 12345;
    for (size_t i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        grads[i] = ((float)(s >> 8) / (float)(1u << 24) - 0.5f) * 4.0f;
        params[i] = (float)(i % 97) * 0.01f - 0.5f;
    }
}

static RmspropOptimizer *make(size_t threads, bool centered) {
    RmspropOptions *o = NULL;
    RmspropOptimizer *h = NULL;
    size_t n = N;
    if (rmsprop_options_new(0.01, &o) != RMSPROP_OK) return NULL;
    rmsprop_options_set_centered(o, centered);
    rmsprop_options_set_momentum(o, 0.9);
    RmspropStatus st = rmsprop_create(o, &n, 1, RMSPROP_DTYPE_F32, &h);
    rmsprop_options_free(o);
    if (st != RMSPROP_OK) return NULL;
    if (rmsprop_set_threads(h, threads) != RMSPROP_OK) {
        rmsprop_destroy(h);
        return NULL;
    }
    return h;
}

/* One step of `h` from `params` into `work`; the hash of the result (0 on error). */
static uint64_t step_hash(RmspropOptimizer *h) {
    memcpy(work, params, N * sizeof(float));
    if (rmsprop_step_f32(h, work, grads, N) != RMSPROP_OK) return 0;
    return fnv1a(work, N);
}

/* Wait for `pid` up to `limit` seconds; kill it after that. Its exit status, or -1 if it
 * was killed (a hang) or crashed. */
static int wait_limited(pid_t pid, int limit) {
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (long waited = 0; waited < (long)limit * 50; waited++) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0) return -1;
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(int argc, char **argv) {
    int limit = argc > 1 ? atoi(argv[1]) : 60;
    params = malloc(N * sizeof(float));
    grads = malloc(N * sizeof(float));
    work = malloc(N * sizeof(float));
    if (!params || !grads || !work) return 2;
    fill();

    /* Different configurations, so that the two handles' results differ. */
    RmspropOptimizer *global = make(0, true), *owned = make(2, false);
    CHECK(global && owned, "parent: created handles with threads 0 and 2");
    if (!global || !owned) return 1;
    /* Warm-up: both pools now exist, with running worker threads. */
    CHECK(step_hash(global) != 0 && step_hash(owned) != 0, "parent: warm-up steps");

    int fds[2];
    if (pipe(fds) != 0) return 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        close(fds[0]);
        uint64_t h[4] = {step_hash(global), step_hash(owned), 0, 0};
        /* A grandchild: a fork of a fork steps too. */
        int gfds[2];
        if (pipe(gfds) == 0) {
            pid_t g = fork();
            if (g == 0) {
                close(gfds[0]);
                uint64_t gh[2] = {step_hash(global), step_hash(owned)};
                if (write(gfds[1], gh, sizeof gh) != (ssize_t)sizeof gh) _exit(3);
                _exit(0);
            }
            close(gfds[1]);
            if (g > 0 && wait_limited(g, limit) == 0 &&
                read(gfds[0], &h[2], 2 * sizeof h[2]) != (ssize_t)(2 * sizeof h[2]))
                h[2] = h[3] = 0;
            close(gfds[0]);
        }
        if (write(fds[1], h, sizeof h) != (ssize_t)sizeof h) _exit(3);
        /* What else a child does with inherited handles: none of it may hang. */
        RmspropOptimizer *fresh = make(0, true);
        int ok = fresh != NULL && step_hash(fresh) != 0;
        ok = ok && rmsprop_set_threads(global, 3) == RMSPROP_OK && step_hash(global) != 0;
        rmsprop_destroy(owned); /* its pool's threads do not exist here */
        rmsprop_destroy(global);
        rmsprop_destroy(fresh);
        _exit(ok ? 0 : 4);
    }
    close(fds[1]);
    /* The parent takes the same step on its own copies of the handles. */
    uint64_t want_global = step_hash(global), want_owned = step_hash(owned);
    int code = wait_limited(pid, limit);
    CHECK(code == 0, "child: finished within %d s (exit code %d; -1 = killed or crashed)", limit,
          code);
    uint64_t got[4] = {0, 0, 0, 0};
    ssize_t r = read(fds[0], got, sizeof got);
    close(fds[0]);
    CHECK(r == (ssize_t)sizeof got, "child: sent its results");
    CHECK(want_global != want_owned, "parent: the two handles compute different results");
    CHECK(got[0] == want_global, "child, threads 0: same bits as the parent (%016llx vs %016llx)",
          (unsigned long long)got[0], (unsigned long long)want_global);
    CHECK(got[1] == want_owned, "child, threads 2: same bits as the parent (%016llx vs %016llx)",
          (unsigned long long)got[1], (unsigned long long)want_owned);
    /* The grandchild stepped each handle once more from the child's state. */
    uint64_t want_grand_global = step_hash(global), want_grand_owned = step_hash(owned);
    CHECK(got[2] == want_grand_global && got[3] == want_grand_owned,
          "grandchild, threads 0 and 2: same bits as the parent");
    /* The parent's pools still work. */
    CHECK(step_hash(global) != 0 && step_hash(owned) != 0, "parent: steps after the fork");
    rmsprop_destroy(global);
    rmsprop_destroy(owned);
    free(params);
    free(grads);
    free(work);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
