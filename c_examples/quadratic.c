/*
 * quadratic.c: the example of optax.rmsprop's documentation, line for line, in C.
 *
 *   def f(x): return jnp.sum(x ** 2)
 *   solver = optax.rmsprop(learning_rate=0.003)
 *   params = jnp.array([1., 2., 3.])
 *   print('Objective function: ', f(params))
 *   opt_state = solver.init(params)
 *   for _ in range(5):
 *     grad = jax.grad(f)(params)
 *     updates, opt_state = solver.update(grad, opt_state, params)
 *     params = optax.apply_updates(params, updates)
 *     print('Objective function: {:.2E}'.format(f(params)))
 *
 * prints, as optax does:
 *
 *   Objective function:  14.0
 *   Objective function: 1.39E+01
 *   Objective function: 1.38E+01
 *   Objective function: 1.37E+01
 *   Objective function: 1.37E+01
 *   Objective function: 1.36E+01
 *
 * Build: cc quadratic.c -I include -L target/release -lrmsprop -o quadratic
 * Every call's status is checked; on failure the program prints the library's message and
 * exits with status 1.
 */
#include <rmsprop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print the failed call, the status name and the library's per-thread message; exit 1. */
static void check(RmspropStatus status, const char *what) {
    if (status != RMSPROP_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, rmsprop_status_name(status),
                rmsprop_last_error_message());
        exit(1);
    }
}

/* f(x) = sum(x^2), accumulated in float like jnp.sum over a float32 array of 3. */
static float f(const float *x, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

/* Python's repr of a float: the shortest decimal that reads back as the same float,
 * with ".0" appended to integral values ("14.0", not "14"). */
static void python_repr(float v, char *buf, size_t len) {
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    if (strpbrk(buf, ".eEn") == NULL) strncat(buf, ".0", len - strlen(buf) - 1);
}

int main(void) {
    if (rmsprop_version_number() != RMSPROP_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", RMSPROP_VERSION_STRING,
                rmsprop_version_string());
        return 1;
    }

    float params[3] = {1.0f, 2.0f, 3.0f};
    const size_t n = 3;
    char repr[32];
    python_repr(f(params, n), repr, sizeof repr);
    printf("Objective function:  %s\n", repr); /* print('...: ', x) puts two spaces */

    /* solver = optax.rmsprop(learning_rate=0.003); opt_state = solver.init(params) */
    RmspropOptions *options = NULL;
    check(rmsprop_options_new(0.003, &options), "rmsprop_options_new");
    RmspropOptimizer *solver = NULL;
    check(rmsprop_create(options, &n, 1, RMSPROP_DTYPE_F32, &solver), "rmsprop_create");
    rmsprop_options_free(options); /* the optimizer keeps its own copy */

    for (int i = 0; i < 5; i++) {
        float grad[3], updates[3];
        for (size_t j = 0; j < n; j++) grad[j] = 2.0f * params[j]; /* jax.grad(f) */
        check(rmsprop_update_f32(solver, grad, updates, n), "rmsprop_update_f32");
        for (size_t j = 0; j < n; j++) params[j] += updates[j]; /* optax.apply_updates */
        printf("Objective function: %.2E\n", (double)f(params, n));
    }

    rmsprop_destroy(solver);
    return 0;
}
