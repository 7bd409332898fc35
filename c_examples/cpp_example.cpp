// cpp_example.cpp: the C++17 wrapper, include/rmsprop.hpp, in use.
//
//  1. optax.rmsprop's documentation example (the same output as quadratic.c);
//  2. a bad hyperparameter, caught as rmsprop::Error with its status and message;
//  3. checkpoints: save to memory and resume bit-identically (from_checkpoint), a too
//     small buffer, save_file/load_file, adopting a raw C handle and releasing it again,
//     and set_initial_scale + reset;
//  4. two tensors with a schedule, the fused step_tensors, state access and threads.
//
// Build: c++ -std=c++17 cpp_example.cpp -I include -L target/release -lrmsprop -o cpp_example
// Exits with status 1 on any unexpected error.

#include <rmsprop.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
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

// The gradient of sum(x^2) (+ a per-step offset so that the steps differ).
std::vector<float> grad(const std::vector<float> &x, int step) {
    std::vector<float> g(x.size());
    for (size_t i = 0; i < x.size(); i++) g[i] = 2 * x[i] + 0.1f * static_cast<float>(step);
    return g;
}

bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void checkpoints() {
    // optax.rmsprop(0.01, momentum=0.9, centered=True) over tensors of 3 and 2 elements.
    rmsprop::Options options(0.01);
    options.momentum(0.9).centered(true);
    rmsprop::Optimizer opt(options, {3, 2});
    std::vector<float> params{1.0f, -2.0f, 3.0f, 0.5f, -0.25f};
    for (int k = 0; k < 3; k++) opt.step(params, grad(params, k));

    // Save to memory, then take two more steps on the original.
    const std::vector<std::uint8_t> ckpt = opt.save();
    const std::vector<float> saved_params = params;
    for (int k = 3; k < 5; k++) opt.step(params, grad(params, k));

    // A new optimizer from the checkpoint takes the same two steps to the same bits.
    rmsprop::Optimizer resumed = rmsprop::Optimizer::from_checkpoint(ckpt);
    std::vector<float> again = saved_params;
    for (int k = 3; k < 5; k++) resumed.step(again, grad(again, k));
    std::printf("checkpoint %zu bytes (size %zu), resumed %zu tensors: %s\n", ckpt.size(), opt.checkpoint_size(),
                resumed.num_tensors(), same_bits(params, again) ? "identical" : "DIFFERENT");

    // A buffer one byte short is refused; nothing is written.
    std::vector<std::uint8_t> small(ckpt.size() - 1, 0xAB);
    try {
        opt.save(small);
        std::printf("unexpected: short buffer accepted\n");
        std::exit(1);
    } catch (const rmsprop::Error &e) {
        bool untouched = true;
        for (std::uint8_t b : small) untouched = untouched && b == 0xAB;
        std::printf("caught %s, buffer %s\n", e.status_name(),
                    e.code() == rmsprop::Status::buffer_too_small && untouched ? "untouched" : "WRITTEN");
    }

    // Through a file: save_file, then load_file into a fresh optimizer of the same layout.
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("rmsprop-cpp-example-" + std::to_string(stamp) + ".ckpt"))
                                 .string();
    opt.save_file(path);
    rmsprop::Optimizer from_file(rmsprop::Options(0.5), {3, 2});
    from_file.load_file(path);
    const rmsprop::Optimizer created = rmsprop::Optimizer::from_checkpoint_file(path);
    std::filesystem::remove(path);
    const bool same_state = from_file.save() == opt.save() && created.save() == opt.save();
    std::printf("file round trip: %s, lr %.4f\n", same_state ? "identical" : "DIFFERENT",
                from_file.current_learning_rate());
    try {
        from_file.load_file(path); // gone now
        std::exit(1);
    } catch (const rmsprop::Error &e) {
        std::printf("missing file: %s, optimizer %s\n", e.status_name(),
                    from_file.save() == opt.save() ? "unchanged" : "CHANGED");
    }

    // Adopt a handle made by the C API, use it, and release it back to C.
    RmspropOptimizer *raw = nullptr;
    if (rmsprop_create_from_checkpoint(ckpt.data(), ckpt.size(), &raw) != RMSPROP_OK) std::exit(1);
    rmsprop::Optimizer adopted = rmsprop::Optimizer::adopt(raw);
    std::vector<float> third = saved_params;
    for (int k = 3; k < 5; k++) adopted.step(third, grad(third, k));
    const std::size_t tensors = adopted.num_tensors(), elements = adopted.total_elements();
    RmspropOptimizer *back = adopted.release();
    std::printf("adopted %zu tensors, %zu elements: %s; released: %s\n", tensors, elements,
                same_bits(params, third) ? "identical" : "DIFFERENT", back == raw && !adopted ? "yes" : "no");
    rmsprop_destroy(back);
    try {
        rmsprop::Optimizer::adopt(nullptr);
        std::exit(1);
    } catch (const rmsprop::Error &e) {
        std::printf("adopt(nullptr): %s\n", rmsprop::status_name(e.code()));
    }

    // initial_scale takes effect at the next reset: nu starts there again.
    opt.set_initial_scale(0.5);
    opt.reset();
    const auto nu = opt.state<float>(rmsprop::Component::nu, 1);
    std::printf("after set_initial_scale(0.5) and reset: nu[1] = {%.2f, %.2f}, steps %d\n",
                static_cast<double>(nu[0]), static_cast<double>(nu[1]), static_cast<int>(opt.counts().schedule));
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
    if (!rmsprop::library_is_compatible()) {
        std::printf("header %s but library %s\n", rmsprop::HeaderVersion::string, rmsprop::version_string());
        return 1;
    }
    try {
        quadratic();
        bad_hyperparameter();
        checkpoints();
        two_tensors();
    } catch (const std::exception &e) {
        std::printf("unexpected error: %s\n", e.what());
        return 1;
    }
    std::printf("done\n");
    return 0;
}
