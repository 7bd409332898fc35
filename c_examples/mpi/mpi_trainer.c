/*
 * mpi_trainer.c: data-parallel training over MPI with a sharded rmsprop state.
 *
 * A small MLP (64 -> 32 tanh -> 10 softmax) learns the 8x8 digits data set. All of its
 * parameters live in one flat float buffer of 2410 elements, tensors in the order
 * W1[32][64], b1[32], W2[10][32], b2[10]. Each step:
 *
 *   1. every rank computes per-sample gradients for its part of the global batch;
 *   2. the gradients are summed across ranks and scattered, so that rank r receives the
 *      batch-mean gradient of its shard [offset_r, offset_r + count_r) only;
 *   3. rank r steps its shard with its own rmsprop handle, created over the shard's
 *      layout (the pieces of the tensors that fall into the shard; a shard may split a
 *      tensor, and shard sizes may differ by one);
 *   4. the shards are all-gathered (MPI_Allgatherv) into the full parameter buffer.
 *
 * The batch-mean gradient does not depend on the number of ranks (see docs/mpi.md):
 *   --reduce fixed    (default) every per-sample gradient is rounded to 64-bit fixed
 *                     point (2^-40) and summed as integers with MPI_Reduce_scatter;
 *                     integer addition is associative, so any reduction order and any
 *                     partition of the batch give the same sum.
 *   --reduce ordered  the batch is cut into a fixed number of micro-batches (independent
 *                     of the rank count); each rank sums its micro-batches in float,
 *                     MPI_Alltoallv sends every micro-batch's shard slice to the shard's
 *                     owner, and the owner adds the micro-batches in micro-batch order.
 *   --reduce float    the naive way, for comparison only: local float sums and a float
 *                     MPI_Reduce_scatter. Its result changes with the rank count.
 * With fixed or ordered, the run prints the same FNV-1a hash of the parameter bytes after
 * every step on 1, 2, 3 or 4 ranks.
 *
 * Checkpoints are sharded: with --save DIR each rank writes its optimizer with
 * rmsprop_checkpoint_save_file (DIR/shard-NNNN.rmsprop) and its parameter slice
 * (DIR/shard-NNNN.params). --resume DIR continues bit-identically, on the same number of
 * ranks (rmsprop_checkpoint_load_file) or on another (re-sharding: each rank opens the old
 * shards that overlap its new range with rmsprop_create_from_checkpoint and copies the
 * overlap per tensor piece with rmsprop_get_state_f32 / rmsprop_set_state_f32).
 *
 * Threads: each rank gives its rmsprop handle max(1, online cores / ranks on this node)
 * worker threads (capped by the rank's CPU affinity), so ranks x threads never exceed the
 * node's cores. The optimizer's results are bit-identical for every thread count.
 *
 * Build and run (see docs/mpi.md):
 *   cargo build --release --lib
 *   mpicc -std=c11 -O2 -ffp-contract=off -Iinclude c_examples/mpi/mpi_trainer.c \
 *         -Ltarget/release -lrmsprop -Wl,-rpath,$PWD/target/release -lm -o mpi_trainer
 *   mpirun -np 3 ./mpi_trainer --data c_examples/data/digits.csv --steps 100
 *
 * Output (rank 0): "rank ..." lines describing each rank, "step N lr X hash H" after every
 * step, and "final step N train_acc A train_loss L test_acc A test_loss L". Exit status 0 on
 * success, 2 (through MPI_Abort) on any error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "rmsprop.h"

/* ---------------------------------------------------------------- model layout */

enum { NIN = 64, NHID = 32, NOUT = 10, NTENSORS = 4 };
enum {
    OFF_W1 = 0,
    OFF_B1 = OFF_W1 + NHID * NIN,
    OFF_W2 = OFF_B1 + NHID,
    OFF_B2 = OFF_W2 + NOUT * NHID,
    NPARAM = OFF_B2 + NOUT /* 2410: not divisible by 3 or 4 */
};
static const size_t TENSOR_OFFSET[NTENSORS + 1] = {OFF_W1, OFF_B1, OFF_W2, OFF_B2, NPARAM};

/* Fixed-point gradients: value * 2^FIX_SHIFT rounded to an int64. A per-sample gradient is
 * clamped to |g| <= 2^FIX_LOG2_LIMIT and a batch has at most 2^FIX_LOG2_BATCH samples, so
 * every sum stays below 2^(40 + 12 + 10) = 2^62: no overflow in any reduction order. */
#define FIX_SHIFT 40
#define FIX_LOG2_LIMIT 12
#define FIX_LOG2_BATCH 10

/* ---------------------------------------------------------------- errors */

static int g_rank = 0;

static void die(const char *what)
{
    fprintf(stderr, "mpi_trainer: rank %d: %s\n", g_rank, what);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    exit(2);
}

#define CHECK_RMS(call)                                                                  \
    do {                                                                                 \
        RmspropStatus st_ = (call);                                                      \
        if (st_ != RMSPROP_OK) {                                                         \
            char msg_[512];                                                              \
            snprintf(msg_, sizeof msg_, "%s failed: %s: %s", #call,                      \
                     rmsprop_status_name(st_), rmsprop_last_error_message());            \
            die(msg_);                                                                   \
        }                                                                                \
    } while (0)

#define CHECK_MPI(call)                                                                  \
    do {                                                                                 \
        if ((call) != MPI_SUCCESS) die(#call " failed");                                \
    } while (0)

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory");
    return p;
}

/* ---------------------------------------------------------------- small utilities */

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Block distribution of `n` items over `parts`: the first n % parts get one more. */
static size_t block_start(size_t n, size_t parts, size_t i)
{
    size_t q = n / parts, r = n % parts;
    return i * q + (i < r ? i : r);
}

/* ---------------------------------------------------------------- data */

typedef struct {
    size_t n;
    float *x;   /* n * NIN, scaled to [0, 1] */
    int *y;     /* n labels in 0..9 */
} Dataset;

/* The digits CSV as scikit-learn ships it: 64 pixel values (0..16), then the label. */
static Dataset load_digits(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        char msg[600];
        snprintf(msg, sizeof msg, "cannot open data file %s: %s", path, strerror(errno));
        die(msg);
    }
    Dataset d = {0, NULL, NULL};
    size_t cap = 0;
    char line[4096];
    size_t lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#') continue;
        if (d.n == cap) {
            cap = cap ? 2 * cap : 2048;
            d.x = realloc(d.x, cap * NIN * sizeof *d.x);
            d.y = realloc(d.y, cap * sizeof *d.y);
            if (!d.x || !d.y) die("out of memory");
        }
        double v[NIN + 1];
        int cols = 0;
        while (cols < NIN + 1) {
            char *end;
            errno = 0;
            v[cols] = strtod(p, &end);
            if (end == p || errno) break;
            cols++;
            p = end;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == ',') p++;
        }
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (cols != NIN + 1 || *p != '\0') {
            char msg[600];
            snprintf(msg, sizeof msg, "%s:%zu: expected 65 comma-separated numbers", path, lineno);
            die(msg);
        }
        for (int k = 0; k < NIN; k++) {
            if (!(v[k] >= 0.0 && v[k] <= 16.0)) die("pixel value outside 0..16");
            d.x[d.n * NIN + k] = (float)(v[k] / 16.0);
        }
        if (!(v[NIN] >= 0.0 && v[NIN] <= 9.0) || v[NIN] != floor(v[NIN]))
            die("label outside 0..9");
        d.y[d.n] = (int)v[NIN];
        d.n++;
    }
    fclose(f);
    if (d.n < 100) die("data file has fewer than 100 samples");
    return d;
}

/* ---------------------------------------------------------------- the model */

/* Forward one sample: hidden activations h, class probabilities p; returns -log p[y]. */
static float forward(const float *w, const float *x, int y, float *h, float *p)
{
    for (int j = 0; j < NHID; j++) {
        float a = w[OFF_B1 + j];
        const float *row = w + OFF_W1 + j * NIN;
        for (int k = 0; k < NIN; k++) a += row[k] * x[k];
        h[j] = tanhf(a);
    }
    float z[NOUT], zmax = -INFINITY;
    for (int c = 0; c < NOUT; c++) {
        float a = w[OFF_B2 + c];
        const float *row = w + OFF_W2 + c * NHID;
        for (int j = 0; j < NHID; j++) a += row[j] * h[j];
        z[c] = a;
        if (a > zmax) zmax = a;
    }
    float sum = 0.0f;
    for (int c = 0; c < NOUT; c++) {
        p[c] = expf(z[c] - zmax);
        sum += p[c];
    }
    for (int c = 0; c < NOUT; c++) p[c] /= sum;
    return logf(sum) - (z[y] - zmax);
}

/* The cross-entropy gradient of one sample into g[NPARAM] (overwritten). */
static void sample_gradient(const float *w, const float *x, int y, float *g)
{
    float h[NHID], p[NOUT], dz[NOUT], da[NHID];
    forward(w, x, y, h, p);
    for (int c = 0; c < NOUT; c++) dz[c] = p[c] - (c == y ? 1.0f : 0.0f);
    for (int j = 0; j < NHID; j++) {
        float dh = 0.0f;
        for (int c = 0; c < NOUT; c++) dh += w[OFF_W2 + c * NHID + j] * dz[c];
        da[j] = dh * (1.0f - h[j] * h[j]);
    }
    for (int c = 0; c < NOUT; c++) {
        g[OFF_B2 + c] = dz[c];
        for (int j = 0; j < NHID; j++) g[OFF_W2 + c * NHID + j] = dz[c] * h[j];
    }
    for (int j = 0; j < NHID; j++) {
        g[OFF_B1 + j] = da[j];
        for (int k = 0; k < NIN; k++) g[OFF_W1 + j * NIN + k] = da[j] * x[k];
    }
}

/* Deterministic initialisation: uniform(-1, 1) / sqrt(fan_in) weights, zero biases. */
static void init_params(float *w, uint64_t seed)
{
    uint64_t s = seed;
    memset(w, 0, NPARAM * sizeof *w);
    for (int i = 0; i < NHID * NIN; i++)
        w[OFF_W1 + i] = (float)(((double)(splitmix64(&s) >> 11) * 0x1p-52 - 1.0) / 8.0);
    for (int i = 0; i < NOUT * NHID; i++)
        w[OFF_W2 + i] = (float)(((double)(splitmix64(&s) >> 11) * 0x1p-52 - 1.0) / sqrt(NHID));
}

/* Accuracy and mean loss over a subset (every sample with index % 5 == 0 is test). */
static void evaluate(const float *w, const Dataset *d, bool test, double *acc, double *loss)
{
    size_t n = 0, correct = 0;
    double total = 0.0;
    for (size_t i = 0; i < d->n; i++) {
        if ((i % 5 == 0) != test) continue;
        float h[NHID], p[NOUT];
        total += forward(w, d->x + i * NIN, d->y[i], h, p);
        int best = 0;
        for (int c = 1; c < NOUT; c++)
            if (p[c] > p[best]) best = c;
        correct += best == d->y[i];
        n++;
    }
    *acc = n ? (double)correct / (double)n : 0.0;
    *loss = n ? total / (double)n : 0.0;
}

/* ---------------------------------------------------------------- batches */

/* The training samples (index % 5 != 0), visited epoch by epoch in a seeded permutation.
 * Global sample j of the run is sample perm_{j / ntrain}[j % ntrain]: the batch of step t
 * is a function of (seed, t) only, never of the rank count, so a resumed run sees the
 * same batches. */
typedef struct {
    size_t ntrain;
    size_t *train;    /* indices of the training samples */
    size_t *perm;     /* permutation of the current epoch */
    uint64_t seed;
    int64_t epoch;    /* epoch held in perm, -1 for none */
} Sampler;

static Sampler sampler_new(const Dataset *d, uint64_t seed)
{
    Sampler s = {0, NULL, NULL, seed, -1};
    s.train = xcalloc(d->n, sizeof *s.train);
    s.perm = xcalloc(d->n, sizeof *s.perm);
    for (size_t i = 0; i < d->n; i++)
        if (i % 5 != 0) s.train[s.ntrain++] = i;
    return s;
}

static size_t sampler_get(Sampler *s, uint64_t j)
{
    int64_t epoch = (int64_t)(j / s->ntrain);
    if (epoch != s->epoch) {
        uint64_t st = s->seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(epoch + 1));
        memcpy(s->perm, s->train, s->ntrain * sizeof *s->perm);
        for (size_t i = s->ntrain - 1; i > 0; i--) {
            size_t k = (size_t)(splitmix64(&st) % (uint64_t)(i + 1));
            size_t t = s->perm[i];
            s->perm[i] = s->perm[k];
            s->perm[k] = t;
        }
        s->epoch = epoch;
    }
    return s->perm[j % s->ntrain];
}

/* ---------------------------------------------------------------- configuration */

enum { REDUCE_FIXED = 0, REDUCE_ORDERED = 1, REDUCE_FLOAT = 2 };
static const char *const REDUCE_NAME[3] = {"fixed", "ordered", "float"};

typedef struct {
    const char *data;
    const char *save;
    const char *resume;
    long steps;        /* schedule horizon and the step a run ends at */
    long stop_after;   /* stop early after this step (for checkpoint tests) */
    long batch;
    long microbatches;
    long threads;      /* 0: automatic */
    int reduce;        /* REDUCE_FIXED, REDUCE_ORDERED or REDUCE_FLOAT */
    double lr;
    uint64_t seed;
} Config;

static void usage(void)
{
    if (g_rank == 0)
        fprintf(stderr,
                "usage: mpi_trainer --data FILE [--steps N] [--stop-after S] [--batch B]\n"
                "                   [--reduce fixed|ordered|float] [--microbatches M] [--lr PEAK]\n"
                "                   [--seed S] [--threads T] [--save DIR] [--resume DIR]\n");
}

static long parse_long(const char *s, const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        char msg[200];
        snprintf(msg, sizeof msg, "bad value for %s: %s", name, s);
        die(msg);
    }
    return v;
}

static Config parse_args(int argc, char **argv)
{
    Config c = {NULL, NULL, NULL, 100, -1, 128, 16, 0, REDUCE_FIXED, 3e-3, 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            die("missing argument value");
        }
        if (!strcmp(a, "--data")) c.data = v;
        else if (!strcmp(a, "--save")) c.save = v;
        else if (!strcmp(a, "--resume")) c.resume = v;
        else if (!strcmp(a, "--steps")) c.steps = parse_long(v, a);
        else if (!strcmp(a, "--stop-after")) c.stop_after = parse_long(v, a);
        else if (!strcmp(a, "--batch")) c.batch = parse_long(v, a);
        else if (!strcmp(a, "--microbatches")) c.microbatches = parse_long(v, a);
        else if (!strcmp(a, "--threads")) c.threads = parse_long(v, a);
        else if (!strcmp(a, "--seed")) c.seed = (uint64_t)parse_long(v, a);
        else if (!strcmp(a, "--lr")) c.lr = strtod(v, NULL);
        else if (!strcmp(a, "--reduce")) {
            if (!strcmp(v, "fixed")) c.reduce = REDUCE_FIXED;
            else if (!strcmp(v, "ordered")) c.reduce = REDUCE_ORDERED;
            else if (!strcmp(v, "float")) c.reduce = REDUCE_FLOAT;
            else die("--reduce takes fixed, ordered or float");
        } else {
            usage();
            die("unknown argument");
        }
        i++;
    }
    if (!c.data) {
        usage();
        die("--data FILE is required (c_examples/data/digits.csv)");
    }
    if (c.steps < 10 || c.steps > INT32_MAX) die("--steps must be at least 10");
    if (c.stop_after < 0 || c.stop_after > c.steps) c.stop_after = c.steps;
    if (c.batch < 1 || c.batch > (1L << FIX_LOG2_BATCH)) die("--batch must be in 1..1024");
    if (c.microbatches < 1 || c.microbatches > c.batch) die("--microbatches must be in 1..batch");
    if (c.threads < 0) die("--threads must be >= 0");
    if (!(c.lr > 0.0 && c.lr < 1.0)) die("--lr must be in (0, 1)");
    return c;
}

/* ---------------------------------------------------------------- the shard */

typedef struct {
    int nranks, rank;
    size_t *counts_sz;   /* per-rank shard sizes */
    int *counts;         /* the same as int, for MPI */
    int *displs;         /* per-rank shard offsets */
    size_t off, len;     /* this rank's shard */
    size_t npieces;      /* tensors (or parts of them) inside the shard */
    size_t piece_size[NTENSORS];
    size_t piece_off[NTENSORS];  /* piece start, relative to the shard */
    RmspropOptimizer *opt;
} Shard;

static Shard make_shard(int nranks, int rank)
{
    Shard s;
    memset(&s, 0, sizeof s);
    s.nranks = nranks;
    s.rank = rank;
    s.counts_sz = xcalloc((size_t)nranks, sizeof *s.counts_sz);
    s.counts = xcalloc((size_t)nranks, sizeof *s.counts);
    s.displs = xcalloc((size_t)nranks, sizeof *s.displs);
    for (int r = 0; r < nranks; r++) {
        size_t a = block_start(NPARAM, (size_t)nranks, (size_t)r);
        size_t b = block_start(NPARAM, (size_t)nranks, (size_t)r + 1);
        s.counts_sz[r] = b - a;
        s.counts[r] = (int)(b - a);
        s.displs[r] = (int)a;
    }
    s.off = (size_t)s.displs[rank];
    s.len = s.counts_sz[rank];
    /* The shard's layout: each tensor's intersection with [off, off + len), in order. */
    for (int t = 0; t < NTENSORS; t++) {
        size_t a = TENSOR_OFFSET[t] > s.off ? TENSOR_OFFSET[t] : s.off;
        size_t b = TENSOR_OFFSET[t + 1] < s.off + s.len ? TENSOR_OFFSET[t + 1] : s.off + s.len;
        if (a < b) {
            s.piece_off[s.npieces] = a - s.off;
            s.piece_size[s.npieces] = b - a;
            s.npieces++;
        }
    }
    return s;
}

/* The rank's share of the node: max(1, online cores / ranks on this node), capped by the
 * CPUs this process may run on (mpirun may bind a rank to one core). */
static size_t thread_share(MPI_Comm world, int *local_ranks, long *online)
{
    MPI_Comm node;
    CHECK_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    CHECK_MPI(MPI_Comm_size(node, local_ranks));
    MPI_Comm_free(&node);
    *online = sysconf(_SC_NPROCESSORS_ONLN);
    if (*online < 1) *online = 1;
    long share = *online / *local_ranks;
    if (share < 1) share = 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        long allowed = CPU_COUNT(&set);
        if (allowed >= 1 && share > allowed) share = allowed;
    }
    return (size_t)share;
}

static RmspropOptimizer *make_optimizer(const Config *c, const Shard *s)
{
    RmspropSchedule *sched = NULL;
    RmspropOptions *opts = NULL;
    /* optax.warmup_cosine_decay_schedule(lr / 10, lr, steps / 10, steps, lr / 100). */
    CHECK_RMS(rmsprop_schedule_warmup_cosine_decay(c->lr / 10.0, c->lr, c->steps / 10, c->steps,
                                                   c->lr / 100.0, 1.0, &sched));
    CHECK_RMS(rmsprop_options_new(c->lr, &opts));
    CHECK_RMS(rmsprop_options_set_learning_rate_schedule(opts, sched));
    CHECK_RMS(rmsprop_options_set_decay(opts, 0.9));
    CHECK_RMS(rmsprop_options_set_eps(opts, 1e-8));
    CHECK_RMS(rmsprop_options_set_centered(opts, true));
    CHECK_RMS(rmsprop_options_set_momentum(opts, 0.9));
    RmspropOptimizer *opt = NULL;
    CHECK_RMS(rmsprop_create(opts, s->piece_size, s->npieces, RMSPROP_DTYPE_F32, &opt));
    rmsprop_options_free(opts);
    rmsprop_schedule_free(sched);
    return opt;
}

/* ---------------------------------------------------------------- gradients */

static int64_t to_fixed(float g, long *clamped)
{
    double v = (double)g;
    const double limit = ldexp(1.0, FIX_LOG2_LIMIT);
    if (v != v) die("NaN gradient");
    if (v > limit) { v = limit; (*clamped)++; }
    if (v < -limit) { v = -limit; (*clamped)++; }
    return (int64_t)llrint(ldexp(v, FIX_SHIFT)); /* exact scaling, round half to even */
}

typedef struct {
    float *g;            /* one sample's gradient, NPARAM */
    int64_t *acc;        /* fixed: this rank's integer sum, NPARAM */
    int64_t *shard_acc;  /* fixed: the global sum of this rank's shard */
    float *fsum;         /* float: this rank's float sum, NPARAM */
    float *mb;           /* ordered: this rank's micro-batch sums, nlocal * NPARAM */
    float *sendbuf;      /* ordered: the same, regrouped per destination shard */
    float *recvbuf;      /* ordered: all micro-batches' slices of this shard, M * len */
    int *sendcounts, *sdispls, *recvcounts, *rdispls;
    float *grad;         /* the batch-mean gradient of this shard, len */
    long clamped;
} Work;

/* The batch-mean gradient of this rank's shard into w->grad: a function of the parameters
 * and the batch only, bit for bit, whatever the number of ranks. */
static void shard_gradient(const Config *c, const Shard *s, const Dataset *d, Sampler *smp,
                           const float *params, long step, Work *w)
{
    const uint64_t base = (uint64_t)step * (uint64_t)c->batch;
    const size_t B = (size_t)c->batch, P = (size_t)s->nranks, r = (size_t)s->rank;
    if (c->reduce != REDUCE_ORDERED) {
        /* This rank's samples: any partition works for integer sums. */
        size_t lo = block_start(B, P, r), hi = block_start(B, P, r + 1);
        if (c->reduce == REDUCE_FLOAT) {
            /* The naive way, kept to show what goes wrong: float sums whose grouping
             * depends on the rank count (local sums, then MPI's reduction order). */
            memset(w->fsum, 0, NPARAM * sizeof *w->fsum);
            for (size_t i = lo; i < hi; i++) {
                size_t idx = sampler_get(smp, base + i);
                sample_gradient(params, d->x + idx * NIN, d->y[idx], w->g);
                for (size_t k = 0; k < NPARAM; k++) w->fsum[k] += w->g[k];
            }
            CHECK_MPI(MPI_Reduce_scatter(w->fsum, w->grad, s->counts, MPI_FLOAT, MPI_SUM,
                                         MPI_COMM_WORLD));
            for (size_t k = 0; k < s->len; k++) w->grad[k] /= (float)B;
            return;
        }
        memset(w->acc, 0, NPARAM * sizeof *w->acc);
        for (size_t i = lo; i < hi; i++) {
            size_t idx = sampler_get(smp, base + i);
            sample_gradient(params, d->x + idx * NIN, d->y[idx], w->g);
            for (size_t k = 0; k < NPARAM; k++) w->acc[k] += to_fixed(w->g[k], &w->clamped);
        }
        /* Integer sums: exact, so MPI may reduce in any order. */
        CHECK_MPI(MPI_Reduce_scatter(w->acc, w->shard_acc, s->counts, MPI_INT64_T, MPI_SUM,
                                     MPI_COMM_WORLD));
        for (size_t k = 0; k < s->len; k++)
            w->grad[k] = (float)(ldexp((double)w->shard_acc[k], -FIX_SHIFT) / (double)B);
        return;
    }
    /* Ordered: micro-batch m holds batch positions [block_start(B, M, m), ...); rank q owns
     * micro-batches [block_start(M, P, q), block_start(M, P, q + 1)). */
    const size_t M = (size_t)c->microbatches;
    size_t m_lo = block_start(M, P, r), m_hi = block_start(M, P, r + 1);
    for (size_t m = m_lo; m < m_hi; m++) {
        float *sum = w->mb + (m - m_lo) * NPARAM;
        memset(sum, 0, NPARAM * sizeof *sum);
        for (size_t i = block_start(B, M, m); i < block_start(B, M, m + 1); i++) {
            size_t idx = sampler_get(smp, base + i);
            sample_gradient(params, d->x + idx * NIN, d->y[idx], w->g);
            for (size_t k = 0; k < NPARAM; k++) sum[k] += w->g[k];
        }
    }
    /* To rank q: the slice [displs[q], displs[q] + counts[q]) of each local micro-batch. */
    size_t pos = 0;
    for (size_t q = 0; q < P; q++) {
        w->sdispls[q] = (int)pos;
        for (size_t m = m_lo; m < m_hi; m++) {
            memcpy(w->sendbuf + pos, w->mb + (m - m_lo) * NPARAM + s->displs[q],
                   s->counts_sz[q] * sizeof(float));
            pos += s->counts_sz[q];
        }
        w->sendcounts[q] = (int)(pos - (size_t)w->sdispls[q]);
    }
    /* From rank q: its micro-batches' slices of this shard. Ranks own consecutive
     * micro-batches in rank order, so the receive buffer is in micro-batch order. */
    pos = 0;
    for (size_t q = 0; q < P; q++) {
        w->rdispls[q] = (int)pos;
        pos += (block_start(M, P, q + 1) - block_start(M, P, q)) * s->len;
        w->recvcounts[q] = (int)(pos - (size_t)w->rdispls[q]);
    }
    CHECK_MPI(MPI_Alltoallv(w->sendbuf, w->sendcounts, w->sdispls, MPI_FLOAT, w->recvbuf,
                            w->recvcounts, w->rdispls, MPI_FLOAT, MPI_COMM_WORLD));
    for (size_t k = 0; k < s->len; k++) {
        float sum = 0.0f;
        for (size_t m = 0; m < M; m++) sum += w->recvbuf[m * s->len + k];
        w->grad[k] = sum / (float)B;
    }
}

/* ---------------------------------------------------------------- checkpoints */

/* A checkpoint is a directory holding two files per rank r of the run that saved it:
 *   shard-NNNN.rmsprop  the rank's optimizer, written by rmsprop_checkpoint_save_file (the
 *                       library's versioned, CRC-checked format: layout, configuration,
 *                       counts, nu, mu, trace);
 *   shard-NNNN.params   the rank's parameter slice and where the run stands, native byte
 *                       order: "RMSPPAR1", u32 version (1), u32 nranks, u32 rank,
 *                       u32 reduce (0 fixed, 1 ordered, 2 float), u64 step, u64 nparam,
 *                       u64 shard_off, u64 shard_len, u64 batch, u64 seed, u64 steps,
 *                       u64 microbatches, f32 params[shard_len], then u64 FNV-1a of all
 *                       the bytes before it.
 * Resuming on as many ranks loads each optimizer whole (rmsprop_checkpoint_load_file).
 * Resuming on another number of ranks (re-sharding) opens every old shard that overlaps
 * the new one (rmsprop_create_from_checkpoint) and copies the overlap tensor piece by
 * tensor piece (rmsprop_get_state_f32 -> rmsprop_set_state_f32). */
#define PARAMS_MAGIC "RMSPPAR1"
#define PARAMS_VERSION 1u

typedef struct {
    uint32_t nranks, rank, reduce;
    uint64_t step, nparam, off, len, batch, seed, steps, microbatches;
} ParamsHeader;

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Buf;

static void put(Buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static bool get(const unsigned char **p, const unsigned char *end, void *out, size_t n)
{
    if ((size_t)(end - *p) < n) return false;
    memcpy(out, *p, n);
    *p += n;
    return true;
}

static void shard_file(char *out, size_t cap, const char *dir, uint32_t rank, const char *ext)
{
    snprintf(out, cap, "%s/shard-%04u.%s", dir, rank, ext);
}

static Buf read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char msg[1200];
        snprintf(msg, sizeof msg, "cannot open checkpoint file %s: %s", path, strerror(errno));
        die(msg);
    }
    Buf b = {NULL, 0, 0};
    unsigned char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, n);
    if (ferror(f)) die("reading a checkpoint file failed");
    fclose(f);
    return b;
}

/* Write `path` atomically: a temporary file, fsync, rename. */
static void write_file_atomic(const char *path, const Buf *b)
{
    char part[1100];
    snprintf(part, sizeof part, "%s.part", path);
    FILE *f = fopen(part, "wb");
    if (!f) {
        char msg[1200];
        snprintf(msg, sizeof msg, "cannot write %s: %s (does the directory exist?)", part,
                 strerror(errno));
        die(msg);
    }
    if (fwrite(b->p, 1, b->len, f) != b->len || fflush(f) != 0 || fsync(fileno(f)) != 0)
        die("writing a checkpoint file failed");
    fclose(f);
    if (rename(part, path) != 0) die("renaming a checkpoint file failed");
}

static void save_checkpoint(const Config *c, const Shard *s, const float *params, long step)
{
    char path[1024];
    shard_file(path, sizeof path, c->save, (uint32_t)s->rank, "rmsprop");
    CHECK_RMS(rmsprop_checkpoint_save_file(s->opt, path));

    ParamsHeader h = {(uint32_t)s->nranks, (uint32_t)s->rank, (uint32_t)c->reduce,
                      (uint64_t)step, NPARAM, s->off, s->len, (uint64_t)c->batch, c->seed,
                      (uint64_t)c->steps, (uint64_t)c->microbatches};
    uint32_t version = PARAMS_VERSION;
    Buf b = {NULL, 0, 0};
    put(&b, PARAMS_MAGIC, 8);
    put(&b, &version, 4);
    put(&b, &h.nranks, 4);
    put(&b, &h.rank, 4);
    put(&b, &h.reduce, 4);
    put(&b, &h.step, 8);
    put(&b, &h.nparam, 8);
    put(&b, &h.off, 8);
    put(&b, &h.len, 8);
    put(&b, &h.batch, 8);
    put(&b, &h.seed, 8);
    put(&b, &h.steps, 8);
    put(&b, &h.microbatches, 8);
    put(&b, params + s->off, s->len * sizeof(float));
    uint64_t sum = fnv1a(FNV_OFFSET, b.p, b.len);
    put(&b, &sum, 8);
    shard_file(path, sizeof path, c->save, (uint32_t)s->rank, "params");
    write_file_atomic(path, &b);
    free(b.p);
}

/* Read and validate shard `rank`'s parameter file; returns its slice (h->len floats). */
static float *read_params(const char *dir, uint32_t rank, ParamsHeader *h)
{
    char path[1024], msg[1200];
    shard_file(path, sizeof path, dir, rank, "params");
    Buf b = read_whole_file(path);
    snprintf(msg, sizeof msg, "checkpoint file %s is corrupt or truncated", path);
    if (b.len < 16) die(msg);
    uint64_t stored;
    memcpy(&stored, b.p + b.len - 8, 8);
    if (stored != fnv1a(FNV_OFFSET, b.p, b.len - 8)) die(msg);
    const unsigned char *p = b.p, *end = b.p + b.len - 8;
    char magic[8];
    uint32_t version;
    bool ok = get(&p, end, magic, 8) && !memcmp(magic, PARAMS_MAGIC, 8) &&
              get(&p, end, &version, 4) && version == PARAMS_VERSION &&
              get(&p, end, &h->nranks, 4) && get(&p, end, &h->rank, 4) &&
              get(&p, end, &h->reduce, 4) && get(&p, end, &h->step, 8) &&
              get(&p, end, &h->nparam, 8) && get(&p, end, &h->off, 8) &&
              get(&p, end, &h->len, 8) && get(&p, end, &h->batch, 8) &&
              get(&p, end, &h->seed, 8) && get(&p, end, &h->steps, 8) &&
              get(&p, end, &h->microbatches, 8);
    if (!ok || h->rank != rank || h->nparam != NPARAM || h->len > NPARAM ||
        h->off > NPARAM - h->len || h->nranks == 0 || rank >= h->nranks ||
        (size_t)(end - p) != h->len * sizeof(float))
        die(msg);
    float *slice = xcalloc(h->len, sizeof *slice);
    memcpy(slice, p, h->len * sizeof *slice);
    free(b.p);
    return slice;
}

static const RmspropComponent COMPONENTS[3] = {RMSPROP_NU, RMSPROP_MU, RMSPROP_TRACE};

/* Resume: this rank's slice of the parameters and its optimizer state from the old shards
 * that overlap [off, off + len), whatever the old rank count. Returns the saved step. */
static long load_checkpoint(const Config *c, Shard *s, float *params)
{
    ParamsHeader h0;
    free(read_params(c->resume, 0, &h0));
    if (h0.batch != (uint64_t)c->batch || h0.seed != c->seed || h0.steps != (uint64_t)c->steps ||
        h0.reduce != (uint32_t)c->reduce || h0.microbatches != (uint64_t)c->microbatches)
        die("the checkpoint was written with other --steps/--batch/--seed/--reduce/"
            "--microbatches");
    const bool same_layout = h0.nranks == (uint32_t)s->nranks;
    bool present[3];
    float *state[3]; /* re-sharding: nu, mu, trace of this shard, in shard coordinates */
    for (int ci = 0; ci < 3; ci++) {
        CHECK_RMS(rmsprop_has_state(s->opt, COMPONENTS[ci], &present[ci]));
        state[ci] = xcalloc(s->len, sizeof(float));
    }
    float *tmp = xcalloc(NPARAM, sizeof *tmp);
    int32_t counts[2] = {-1, -1};
    size_t covered = 0;
    char path[1024];
    for (uint32_t q = 0; q < h0.nranks; q++) {
        size_t qa = block_start(NPARAM, h0.nranks, q), qb = block_start(NPARAM, h0.nranks, q + 1);
        size_t a = qa > s->off ? qa : s->off;
        size_t b = qb < s->off + s->len ? qb : s->off + s->len;
        if (a >= b) continue;
        ParamsHeader h;
        float *slice = read_params(c->resume, q, &h);
        if (h.nranks != h0.nranks || h.step != h0.step || h.off != qa || h.len != qb - qa)
            die("checkpoint shards disagree (mixed saves in one directory?)");
        memcpy(params + a, slice + (a - qa), (b - a) * sizeof(float));
        free(slice);
        covered += b - a;
        shard_file(path, sizeof path, c->resume, q, "rmsprop");
        if (same_layout) {
            /* Same shards: the library restores the whole optimizer, validating it. */
            CHECK_RMS(rmsprop_checkpoint_load_file(s->opt, path));
            CHECK_RMS(rmsprop_get_counts(s->opt, &counts[0], &counts[1]));
            continue;
        }
        /* Re-sharding: open old shard q as a handle of its own layout and copy the
         * overlap, tensor piece by tensor piece. */
        Buf f = read_whole_file(path);
        RmspropOptimizer *old = NULL;
        CHECK_RMS(rmsprop_create_from_checkpoint(f.p, f.len, &old));
        free(f.p);
        for (int ci = 0; ci < 3; ci++) {
            bool has = false;
            CHECK_RMS(rmsprop_has_state(old, COMPONENTS[ci], &has));
            if (has != present[ci]) die("the checkpoint's optimizer configuration differs");
        }
        int32_t qc[2];
        CHECK_RMS(rmsprop_get_counts(old, &qc[0], &qc[1]));
        if (counts[0] >= 0 && (qc[0] != counts[0] || qc[1] != counts[1]))
            die("checkpoint shards disagree on the optimizer counts");
        counts[0] = qc[0];
        counts[1] = qc[1];
        size_t nt = 0, pos = qa;
        CHECK_RMS(rmsprop_num_tensors(old, &nt));
        for (size_t t = 0; t < nt; t++) {
            size_t n = 0;
            CHECK_RMS(rmsprop_tensor_size(old, t, &n));
            if (n > qb - pos) die("an old optimizer shard does not match its parameter shard");
            size_t pa = pos > a ? pos : a, pb = pos + n < b ? pos + n : b;
            for (int ci = 0; ci < 3 && pa < pb; ci++) {
                if (!present[ci]) continue;
                CHECK_RMS(rmsprop_get_state_f32(old, COMPONENTS[ci], t, tmp, n));
                memcpy(state[ci] + (pa - s->off), tmp + (pa - pos), (pb - pa) * sizeof(float));
            }
            pos += n;
        }
        if (pos != qb) die("an old optimizer shard does not match its parameter shard");
        rmsprop_destroy(old);
    }
    if (covered != s->len) die("the checkpoint does not cover this rank's shard");
    if (!same_layout) {
        for (int ci = 0; ci < 3; ci++) {
            if (!present[ci]) continue;
            for (size_t i = 0; i < s->npieces; i++)
                CHECK_RMS(rmsprop_set_state_f32(s->opt, COMPONENTS[ci], i,
                                                state[ci] + s->piece_off[i], s->piece_size[i]));
        }
        CHECK_RMS(rmsprop_set_counts(s->opt, counts[0], counts[1]));
    }
    if ((uint64_t)counts[0] != h0.step)
        die("the optimizer checkpoint and the parameter checkpoint are at different steps");
    for (int ci = 0; ci < 3; ci++) free(state[ci]);
    free(tmp);
    /* Every rank now holds its slice of the parameters; gather the rest. */
    CHECK_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params, s->counts, s->displs,
                             MPI_FLOAT, MPI_COMM_WORLD));
    return (long)h0.step;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int nranks, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    g_rank = rank;
    if (rmsprop_version_number() / 10000 != RMSPROP_VERSION_MAJOR)
        die("librmsprop's major version differs from rmsprop.h");

    Config c = parse_args(argc, argv);
    Dataset data = load_digits(c.data);
    Sampler smp = sampler_new(&data, c.seed);
    Shard s = make_shard(nranks, rank);
    s.opt = make_optimizer(&c, &s);

    int local_ranks;
    long online;
    size_t threads = thread_share(MPI_COMM_WORLD, &local_ranks, &online);
    if (c.threads > 0) threads = (size_t)c.threads;
    CHECK_RMS(rmsprop_set_threads(s.opt, threads));

    /* Describe every rank from rank 0, in rank order. */
    long info[6] = {(long)s.off, (long)s.len, (long)s.npieces, (long)threads, local_ranks, online};
    long *all = rank == 0 ? xcalloc((size_t)nranks * 6, sizeof(long)) : NULL;
    CHECK_MPI(MPI_Gather(info, 6, MPI_LONG, all, 6, MPI_LONG, 0, MPI_COMM_WORLD));
    if (rank == 0) {
        printf("config ranks %d params %d batch %ld steps %ld reduce %s microbatches %ld\n",
               nranks, NPARAM, c.batch, c.steps, REDUCE_NAME[c.reduce],
               c.microbatches);
        for (int r = 0; r < nranks; r++)
            printf("rank %d shard %ld+%ld pieces %ld threads %ld local_ranks %ld cores %ld\n", r,
                   all[r * 6], all[r * 6 + 1], all[r * 6 + 2], all[r * 6 + 3], all[r * 6 + 4],
                   all[r * 6 + 5]);
        free(all);
    }

    float *params = xcalloc(NPARAM, sizeof *params);
    long step = 0;
    if (c.resume) {
        step = load_checkpoint(&c, &s, params);
        if (step > c.stop_after) die("the checkpoint is past --stop-after/--steps");
        if (rank == 0) printf("resumed step %ld from %s\n", step, c.resume);
    } else {
        init_params(params, c.seed);
    }

    Work w;
    memset(&w, 0, sizeof w);
    w.g = xcalloc(NPARAM, sizeof *w.g);
    w.grad = xcalloc(s.len, sizeof *w.grad);
    if (c.reduce == REDUCE_FIXED) {
        w.acc = xcalloc(NPARAM, sizeof *w.acc);
        w.shard_acc = xcalloc(s.len, sizeof *w.shard_acc);
    } else if (c.reduce == REDUCE_FLOAT) {
        w.fsum = xcalloc(NPARAM, sizeof *w.fsum);
    } else {
        size_t M = (size_t)c.microbatches;
        size_t nlocal = block_start(M, (size_t)nranks, (size_t)rank + 1) -
                        block_start(M, (size_t)nranks, (size_t)rank);
        w.mb = xcalloc(nlocal * NPARAM, sizeof *w.mb);
        w.sendbuf = xcalloc(nlocal * NPARAM, sizeof *w.sendbuf);
        w.recvbuf = xcalloc(M * s.len, sizeof *w.recvbuf);
        w.sendcounts = xcalloc((size_t)nranks, sizeof(int));
        w.sdispls = xcalloc((size_t)nranks, sizeof(int));
        w.recvcounts = xcalloc((size_t)nranks, sizeof(int));
        w.rdispls = xcalloc((size_t)nranks, sizeof(int));
    }
    uint64_t *hashes = xcalloc((size_t)nranks, sizeof *hashes);

    while (step < c.stop_after) {
        double lr;
        CHECK_RMS(rmsprop_current_learning_rate(s.opt, &lr));
        shard_gradient(&c, &s, &data, &smp, params, step, &w);
        /* Step this shard in place inside the full buffer, then share it. */
        RmspropStatus st = rmsprop_step_f32(s.opt, params + s.off, w.grad, s.len);
        CHECK_RMS(st);
        CHECK_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params, s.counts, s.displs,
                                 MPI_FLOAT, MPI_COMM_WORLD));
        step++;
        uint64_t hash = fnv1a(FNV_OFFSET, params, NPARAM * sizeof *params);
        CHECK_MPI(MPI_Allgather(&hash, 1, MPI_UINT64_T, hashes, 1, MPI_UINT64_T, MPI_COMM_WORLD));
        for (int r = 0; r < nranks; r++)
            if (hashes[r] != hash) die("ranks disagree on the parameters");
        if (rank == 0) printf("step %ld lr %.9g hash %016" PRIx64 "\n", step, lr, hash);
    }

    long clamped = w.clamped, clamped_all = 0;
    CHECK_MPI(MPI_Reduce(&clamped, &clamped_all, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD));
    if (c.save) {
        save_checkpoint(&c, &s, params, step);
        CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
        if (rank == 0) printf("saved step %ld to %s (%d shards)\n", step, c.save, nranks);
    }
    if (rank == 0) {
        double train_acc, train_loss, test_acc, test_loss;
        evaluate(params, &data, false, &train_acc, &train_loss);
        evaluate(params, &data, true, &test_acc, &test_loss);
        if (clamped_all) printf("warning: %ld per-sample gradient values clamped\n", clamped_all);
        printf("final step %ld train_acc %.4f train_loss %.4f test_acc %.4f test_loss %.4f\n",
               step, train_acc, train_loss, test_acc, test_loss);
        fflush(stdout);
    }

    rmsprop_destroy(s.opt);
    free(params);
    free(hashes);
    free(w.g); free(w.grad); free(w.acc); free(w.shard_acc); free(w.fsum); free(w.mb); free(w.sendbuf);
    free(w.recvbuf); free(w.sendcounts); free(w.sdispls); free(w.recvcounts); free(w.rdispls);
    free(s.counts_sz); free(s.counts); free(s.displs);
    free(smp.train); free(smp.perm);
    free(data.x); free(data.y);
    MPI_Finalize();
    return 0;
}
