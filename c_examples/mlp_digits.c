/*
 * mlp_digits.c: train a small neural network in plain C with the rmsprop library.
 *
 * A 64-32-10 multilayer perceptron (tanh hidden layer, softmax cross-entropy, backprop
 * written out by hand) learns the 8x8 handwritten digits of c_examples/data/digits.csv
 * (1797 images, the copy scikit-learn ships; see data/LICENSE-digits.txt). It shows:
 *   - four parameter tensors W1, b1, W2, b2 updated in one call, rmsprop_step_tensors_f32;
 *   - a learning-rate schedule, optax.warmup_cosine_decay_schedule, built in C;
 *   - a handle with one worker thread (rmsprop_set_threads), right for tensors this small;
 *   - every status checked, with the library's message on failure.
 * The split (80% train, 20% test), the initialisation and the batch order come from one
 * fixed seed, so every run prints the same numbers on the same machine.
 *
 * Usage: mlp_digits [path/to/digits.csv] [epochs]    (defaults: the data file, 25 epochs)
 * Build: cc -O2 mlp_digits.c -I include -L target/release -lrmsprop -lm -o mlp_digits
 * The last line is "final test accuracy: 0.xxxx"; the program exits with status 1 on any
 * error and with status 2 when the final test accuracy is not above 0.9.
 */
#include <rmsprop.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MLP_DIGITS_CSV
#define MLP_DIGITS_CSV "c_examples/data/digits.csv"
#endif

enum { N_IN = 64, N_HID = 32, N_OUT = 10, MAX_ROWS = 2000, BATCH = 32 };

static void check(RmspropStatus status, const char *what) {
    if (status != RMSPROP_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, rmsprop_status_name(status),
                rmsprop_last_error_message());
        exit(1);
    }
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- a small seeded random number generator (splitmix64) ---- */

static uint64_t rng_state = 20240601u;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_uniform(void) { return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0); }

/* Fisher-Yates shuffle. */
static void shuffle(int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next() % (uint64_t)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ---- the data: 64 pixels in 0..16 and a label per line ---- */

static int load_digits(const char *path, float *x, int *y) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s (pass the path to digits.csv as the first argument)\n",
                path);
        exit(1);
    }
    char line[1024];
    int rows = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '\n' || line[0] == '\0') continue;
        if (rows == MAX_ROWS) {
            fprintf(stderr, "%s: more than %d rows\n", path, MAX_ROWS);
            exit(1);
        }
        char *p = line;
        for (int c = 0; c <= N_IN; c++) {
            char *end;
            long v = strtol(p, &end, 10);
            int bad = end == p || (c < N_IN ? (*end != ',' || v < 0 || v > 16)
                                            : (v < 0 || v >= N_OUT));
            if (bad) {
                fprintf(stderr, "%s:%d: malformed value in column %d\n", path, rows + 1, c + 1);
                exit(1);
            }
            if (c < N_IN) x[(size_t)rows * N_IN + (size_t)c] = (float)v / 16.0f;
            else y[rows] = (int)v;
            p = end + 1;
        }
        rows++;
    }
    fclose(f);
    return rows;
}

/* ---- the model: parameters and gradients, one contiguous tensor each ---- */

typedef struct {
    float w1[N_HID * N_IN]; /* hidden = tanh(w1 x + b1), row-major [N_HID][N_IN] */
    float b1[N_HID];
    float w2[N_OUT * N_HID]; /* logits = w2 hidden + b2, row-major [N_OUT][N_HID] */
    float b2[N_OUT];
} Mlp;

/* Forward pass of one example: hidden activations and softmax probabilities. */
static void forward(const Mlp *m, const float *x, float *h, float *p) {
    for (int j = 0; j < N_HID; j++) {
        float s = m->b1[j];
        for (int i = 0; i < N_IN; i++) s += m->w1[j * N_IN + i] * x[i];
        h[j] = tanhf(s);
    }
    float zmax = -INFINITY;
    for (int k = 0; k < N_OUT; k++) {
        float s = m->b2[k];
        for (int j = 0; j < N_HID; j++) s += m->w2[k * N_HID + j] * h[j];
        p[k] = s;
        if (s > zmax) zmax = s;
    }
    float total = 0.0f;
    for (int k = 0; k < N_OUT; k++) {
        p[k] = expf(p[k] - zmax);
        total += p[k];
    }
    for (int k = 0; k < N_OUT; k++) p[k] /= total;
}

static int argmax(const float *p) {
    int best = 0;
    for (int k = 1; k < N_OUT; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* Mean loss and accuracy over a list of examples. */
static void evaluate(const Mlp *m, const float *x, const int *y, const int *idx, int n,
                     double *loss, double *acc) {
    float h[N_HID], p[N_OUT];
    double l = 0.0;
    int correct = 0;
    for (int e = 0; e < n; e++) {
        int r = idx[e];
        forward(m, x + (size_t)r * N_IN, h, p);
        l -= log((double)p[y[r]] + 1e-30);
        correct += argmax(p) == y[r];
    }
    *loss = l / n;
    *acc = (double)correct / n;
}

/* Gradient of the mean cross-entropy over a batch into g; returns the batch's summed loss. */
static double backprop(const Mlp *m, const float *x, const int *y, const int *batch, int b,
                       Mlp *g, int *correct) {
    float h[N_HID], p[N_OUT], dh[N_HID];
    double loss = 0.0;
    memset(g, 0, sizeof *g);
    for (int e = 0; e < b; e++) {
        const float *xe = x + (size_t)batch[e] * N_IN;
        int label = y[batch[e]];
        forward(m, xe, h, p);
        loss -= log((double)p[label] + 1e-30);
        *correct += argmax(p) == label;
        /* d loss / d logits = p - onehot(label), averaged over the batch */
        for (int j = 0; j < N_HID; j++) dh[j] = 0.0f;
        for (int k = 0; k < N_OUT; k++) {
            float dz = (p[k] - (k == label ? 1.0f : 0.0f)) / (float)b;
            g->b2[k] += dz;
            for (int j = 0; j < N_HID; j++) {
                g->w2[k * N_HID + j] += dz * h[j];
                dh[j] += dz * m->w2[k * N_HID + j];
            }
        }
        for (int j = 0; j < N_HID; j++) {
            float da = dh[j] * (1.0f - h[j] * h[j]); /* tanh' */
            g->b1[j] += da;
            for (int i = 0; i < N_IN; i++) g->w1[j * N_IN + i] += da * xe[i];
        }
    }
    return loss;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : MLP_DIGITS_CSV;
    int epochs = 25;
    if (argc > 2) {
        char *end;
        long v = strtol(argv[2], &end, 10);
        if (*end != '\0' || v < 1 || v > 10000) {
            fprintf(stderr, "usage: %s [digits.csv] [epochs, 1..10000]\n", argv[0]);
            return 1;
        }
        epochs = (int)v;
    }
    if (rmsprop_version_number() != RMSPROP_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", RMSPROP_VERSION_STRING,
                rmsprop_version_string());
        return 1;
    }

    /* Data: shuffle once with the seed, 80% train, 20% test. */
    float *x = xcalloc((size_t)MAX_ROWS * N_IN, sizeof *x);
    int *y = xcalloc(MAX_ROWS, sizeof *y);
    int rows = load_digits(path, x, y);
    if (rows < 100) {
        fprintf(stderr, "%s: only %d rows\n", path, rows);
        return 1;
    }
    int *order = xcalloc((size_t)rows, sizeof *order);
    for (int i = 0; i < rows; i++) order[i] = i;
    shuffle(order, rows);
    int n_test = rows / 5, n_train = rows - n_test;
    int *train = order, *test = order + n_train;
    printf("digits: %d images, %d train, %d test; MLP %d-%d-%d\n", rows, n_train, n_test, N_IN,
           N_HID, N_OUT);

    /* Model: Glorot-uniform weights, zero biases. */
    Mlp *model = xcalloc(1, sizeof *model);
    Mlp *grad = xcalloc(1, sizeof *grad);
    double a1 = sqrt(6.0 / (N_IN + N_HID)), a2 = sqrt(6.0 / (N_HID + N_OUT));
    for (int i = 0; i < N_HID * N_IN; i++) model->w1[i] = (float)((2.0 * rng_uniform() - 1.0) * a1);
    for (int i = 0; i < N_OUT * N_HID; i++) model->w2[i] = (float)((2.0 * rng_uniform() - 1.0) * a2);

    /* Optimizer: optax.rmsprop(learning_rate=optax.warmup_cosine_decay_schedule(
     *   0.0, 0.01, warmup_steps=one epoch, decay_steps=all steps, end_value=1e-4)). */
    const int steps_per_epoch = (n_train + BATCH - 1) / BATCH;
    const int64_t total_steps = (int64_t)steps_per_epoch * epochs;
    RmspropSchedule *schedule = NULL;
    check(rmsprop_schedule_warmup_cosine_decay(0.0, 1e-2, steps_per_epoch,
                                               total_steps > steps_per_epoch ? total_steps
                                                                             : steps_per_epoch + 1,
                                               1e-4, 1.0, &schedule),
          "rmsprop_schedule_warmup_cosine_decay");
    RmspropOptions *options = NULL;
    check(rmsprop_options_new(1e-2, &options), "rmsprop_options_new");
    check(rmsprop_options_set_learning_rate_schedule(options, schedule),
          "rmsprop_options_set_learning_rate_schedule");
    rmsprop_schedule_free(schedule); /* the options hold a copy */

    float *params[4] = {model->w1, model->b1, model->w2, model->b2};
    const float *grads[4] = {grad->w1, grad->b1, grad->w2, grad->b2};
    const size_t sizes[4] = {N_HID * N_IN, N_HID, N_OUT * N_HID, N_OUT};
    RmspropOptimizer *opt = NULL;
    check(rmsprop_create(options, sizes, 4, RMSPROP_DTYPE_F32, &opt), "rmsprop_create");
    rmsprop_options_free(options);
    /* 2.4k parameters: worker threads would cost more than they save. */
    check(rmsprop_set_threads(opt, 1), "rmsprop_set_threads");

    double test_loss = 0.0, test_acc = 0.0;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        double lr = 0.0;
        check(rmsprop_current_learning_rate(opt, &lr), "rmsprop_current_learning_rate");
        shuffle(train, n_train);
        double loss = 0.0;
        int correct = 0;
        for (int start = 0; start < n_train; start += BATCH) {
            int b = n_train - start < BATCH ? n_train - start : BATCH;
            loss += backprop(model, x, y, train + start, b, grad, &correct);
            check(rmsprop_step_tensors_f32(opt, params, grads, 4), "rmsprop_step_tensors_f32");
        }
        evaluate(model, x, y, test, n_test, &test_loss, &test_acc);
        printf("epoch %3d  lr %.2e  train loss %.4f  train acc %.4f  test loss %.4f  test acc "
               "%.4f\n",
               epoch, lr, loss / n_train, (double)correct / n_train, test_loss, test_acc);
    }

    int32_t steps = 0;
    check(rmsprop_get_counts(opt, &steps, NULL), "rmsprop_get_counts");
    printf("steps: %d\n", (int)steps);
    printf("final test accuracy: %.4f\n", test_acc);

    rmsprop_destroy(opt);
    free(grad);
    free(model);
    free(order);
    free(y);
    free(x);
    return test_acc > 0.9 ? 0 : 2;
}
