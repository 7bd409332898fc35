// cpp_example.cpp: the C++17 wrapper, include/rmsprop.hpp, in use.
//
//  1. optax.rmsprop's documentation example (the same output as quadratic.c);
//  2. a bad hyperparameter, caught as rmsprop::Error with its status and message;
//  3. two tensors with a schedule, the fused step_tensors, state access and threads.
//
// Build: c++ -std=c++17 cpp_example.cpp -I include -L target/release -lrmsprop -o cpp_example
// Exits with status 1 on any unexpected error.

#include <rmsprop.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

float f(const std::vector<float> &x) {
    float s = 0.0f;
    for (float v : x) s += v * v;
    return s;
}

void quadratic() {
    rmsprop::Optimizer solver(rmsprop::Options(0.003), {3});
    std::vector<float> params{1.0f, 2.0f, 3.0f};
    std::printf("Objective function:  %.1f\n", static_cast<double>(f(params)));
    for (int i = 0; i < 5; i++) {
        std::vector<float> grads{2 * params[0], 2 * params[1], 2 * params[2]};
        solver.step(params, grads); // optax update + apply_updates
        std::printf("Objective function: %.2E\n", static_cast<double>(f(params)));
    }
}

void bad_hyperparameter() {
    try {
        rmsprop::Options options(0.003);
        options.decay(1.5); // optax would accept it and diverge; the library refuses
        std::printf("unexpected: decay 1.5 accepted\n");
        std::exit(1);
    } catch (const rmsprop::Error &e) {
        std::printf("caught rmsprop::Error %s (status %d): %s\n", e.status_name(), static_cast<int>(e.status()),
                    e.message().c_str());
    }
}

void two_tensors() {
    // optax.rmsprop(learning_rate=optax.linear_schedule(0.1, 0.01, 10), centered=True, momentum=0.9)
    auto schedule = rmsprop::Schedule::linear(0.1, 0.01, 10);
    rmsprop::Options options(schedule);
    options.centered(true).momentum(0.9);
    rmsprop::Optimizer opt(options, {4, 2}, rmsprop::Dtype::f64);
    opt.set_threads(1);

    std::vector<double> w{1.0, -2.0, 3.0, -4.0}, b{0.5, -0.5};
    for (int i = 0; i < 10; i++) {
        std::vector<double> dw(w.size()), db(b.size());
        for (size_t j = 0; j < w.size(); j++) dw[j] = 2 * w[j]; // grad of sum(w^2) + sum(b^2)
        for (size_t j = 0; j < b.size(); j++) db[j] = 2 * b[j];
        if (opt.step_tensors({w, b}, {dw, db}) != rmsprop::StepResult::applied) std::exit(1);
    }
    auto counts = opt.counts();
    auto trace = opt.state<double>(rmsprop::Component::trace, 0);
    std::printf("steps %d, next lr %.4f, tensors %zu, elements %zu, threads %zu, has mu %s\n",
                static_cast<int>(counts.schedule), opt.current_learning_rate(), opt.num_tensors(),
                opt.total_elements(), opt.threads(), opt.has_state(rmsprop::Component::mu) ? "yes" : "no");
    double loss = 0.0;
    for (double v : w) loss += v * v;
    for (double v : b) loss += v * v;
    std::printf("loss %.4f after 10 steps (from 30.5000); trace[0] %.4f\n", loss, trace[0]);

    // A float buffer on a double optimizer is refused, and the optimizer is unchanged.
    std::vector<float> wrong(6, 0.0f);
    try {
        opt.update(wrong);
        std::exit(1);
    } catch (const rmsprop::Error &e) {
        std::printf("caught %s\n", e.status_name());
    }
    rmsprop::Optimizer moved = std::move(opt);
    std::printf("moved: %s -> %s\n", opt ? "handle" : "empty", moved ? "handle" : "empty");
}

} // namespace

int main() {
    if (rmsprop::version_number() != RMSPROP_VERSION_NUMBER) {
        std::printf("header %s but library %s\n", RMSPROP_VERSION_STRING, rmsprop::version_string());
        return 1;
    }
    try {
        quadratic();
        bad_hyperparameter();
        two_tensors();
    } catch (const std::exception &e) {
        std::printf("unexpected error: %s\n", e.what());
        return 1;
    }
    std::printf("done\n");
    return 0;
}
