/*
 * rmsprop.hpp: a header-only C++17 wrapper over the C API of rmsprop.h.
 *
 *   rmsprop::Options     optax.rmsprop's arguments (setters chain: Options(1e-3).decay(0.95))
 *   rmsprop::Schedule    optax's learning-rate schedules (static constructors)
 *   rmsprop::Optimizer   an optimizer over a layout of tensors: update, step, state access,
 *                        checkpoints (save/load to memory or file, from_checkpoint), and
 *                        adoption of a raw RmspropOptimizer * (adopt / release)
 *   rmsprop::Status      the status codes (RMSPROP_OK, RMSPROP_ERR_*) as an enum class
 *   rmsprop::Error       thrown for every failed call; carries the RmspropStatus and message
 *   rmsprop::span<T>     a pointer and a size (C++17 has no std::span); built implicitly from
 *                        std::vector, std::array, C arrays, or anything with data()/size()
 *
 * All three objects own their C handle (RAII) and are move-only; a moved-from object holds
 * no handle, and using it throws rmsprop::Error (RMSPROP_ERR_NULL_POINTER); it may be
 * assigned to or destroyed. Optimizer::adopt takes ownership of a handle created through
 * the C API (e.g. by rmsprop_create_from_checkpoint); Optimizer::release gives it back.
 *
 * Example:
 *   rmsprop::Optimizer opt(rmsprop::Options(0.003), {3}, rmsprop::Dtype::f32);
 *   std::vector<float> params{1, 2, 3}, grads{2, 4, 6};
 *   opt.step(params, grads);                  // optax update + apply_updates
 *
 * Typed calls: float buffers go to the *_f32 entry points and double buffers to *_f64; the
 * library checks that they match the optimizer's dtype (RMSPROP_ERR_WRONG_DTYPE). The
 * wrapper checks every buffer's length against the layout before calling the library.
 *
 * Threading: as rmsprop.h. const member functions may run concurrently; the others need
 * exclusive use of the object. The error message is read on the thread that failed, right
 * after the failing call, so it is safe with the library's per-thread last error.
 */
#ifndef RMSPROP_HPP
#define RMSPROP_HPP

#include "rmsprop.h"

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rmsprop {

/** The status codes of rmsprop.h as an enum class (values identical to the macros). */
enum class Status : RmspropStatus {
    ok = RMSPROP_OK,
    skipped_non_finite = RMSPROP_SKIPPED_NON_FINITE,
    null_pointer = RMSPROP_ERR_NULL_POINTER,
    invalid_hyperparameter = RMSPROP_ERR_INVALID_HYPERPARAMETER,
    invalid_schedule = RMSPROP_ERR_INVALID_SCHEDULE,
    length_mismatch = RMSPROP_ERR_LENGTH_MISMATCH,
    out_of_range = RMSPROP_ERR_OUT_OF_RANGE,
    no_such_state = RMSPROP_ERR_NO_SUCH_STATE,
    misaligned = RMSPROP_ERR_MISALIGNED,
    overlap = RMSPROP_ERR_OVERLAP,
    wrong_dtype = RMSPROP_ERR_WRONG_DTYPE,
    bad_enum = RMSPROP_ERR_BAD_ENUM,
    busy = RMSPROP_ERR_BUSY,
    poisoned = RMSPROP_ERR_POISONED,
    internal = RMSPROP_ERR_INTERNAL,
    overflow = RMSPROP_ERR_OVERFLOW,
    threads = RMSPROP_ERR_THREADS,
    buffer_too_small = RMSPROP_ERR_BUFFER_TOO_SMALL,
    io = RMSPROP_ERR_IO,
    checkpoint_corrupt = RMSPROP_ERR_CHECKPOINT_CORRUPT,
    checkpoint_version = RMSPROP_ERR_CHECKPOINT_VERSION,
    checkpoint_mismatch = RMSPROP_ERR_CHECKPOINT_MISMATCH,
    out_of_memory = RMSPROP_ERR_OUT_OF_MEMORY,
};

/** A status code's name, e.g. "RMSPROP_ERR_BUSY" (static storage). */
inline const char *status_name(Status status) noexcept {
    return rmsprop_status_name(static_cast<RmspropStatus>(status));
}

/** A failed call: the status code, its name, and the library's message. */
class Error : public std::runtime_error {
public:
    Error(RmspropStatus status, const std::string &message)
        : std::runtime_error(std::string(rmsprop_status_name(status)) + ": " + message),
          status_(status), message_(message) {}

    /** The RMSPROP_ERR_* code. */
    RmspropStatus status() const noexcept { return status_; }
    /** The same code as an rmsprop::Status. */
    Status code() const noexcept { return static_cast<Status>(status_); }
    /** The code's name, e.g. "RMSPROP_ERR_INVALID_HYPERPARAMETER" (static storage). */
    const char *status_name() const noexcept { return rmsprop_status_name(status_); }
    /** The library's message alone, without the status name. */
    const std::string &message() const noexcept { return message_; }

private:
    RmspropStatus status_;
    std::string message_;
};

namespace detail {

/** Throw rmsprop::Error unless `status` is RMSPROP_OK or RMSPROP_SKIPPED_NON_FINITE. */
inline RmspropStatus check(RmspropStatus status) {
    if (status != RMSPROP_OK && status != RMSPROP_SKIPPED_NON_FINITE) {
        const char *msg = rmsprop_last_error_message();
        throw Error(status, msg != nullptr ? msg : "");
    }
    return status;
}

/** A whole file's bytes; rmsprop::Error RMSPROP_ERR_IO when it cannot be read. */
inline std::vector<std::uint8_t> read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(RMSPROP_ERR_IO, "cannot open " + path);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(RMSPROP_ERR_IO, "cannot read " + path);
    return bytes;
}

template <class T> struct is_real : std::bool_constant<std::is_same_v<std::remove_const_t<T>, float> ||
                                                       std::is_same_v<std::remove_const_t<T>, double>> {};

} // namespace detail

/** A contiguous run of `size()` elements at `data()`; does not own them. */
template <class T> class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using size_type = std::size_t;
    using pointer = T *;
    using iterator = T *;

    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    /** Any contiguous container or array with data()/size() whose element pointer converts
     *  to T * (std::vector<float> or float[3] to span<float> or span<const float>). */
    template <class C, class = std::enable_if_t<
                           !std::is_same_v<std::remove_cv_t<std::remove_reference_t<C>>, span> &&
                           std::is_convertible_v<decltype(std::data(std::declval<C &>())), T *> &&
                           std::is_convertible_v<decltype(std::size(std::declval<C &>())), std::size_t>>>
    constexpr span(C &&container) noexcept : data_(std::data(container)), size_(std::size(container)) {}
    /** span<float> converts to span<const float>. */
    template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
    constexpr span(const span<U> &other) noexcept : data_(other.data()), size_(other.size()) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

/** Element type of an optimizer. bf16 and f16 buffers are std::uint16_t bit patterns. */
enum class Dtype : RmspropDtype {
    f32 = RMSPROP_DTYPE_F32,
    f64 = RMSPROP_DTYPE_F64,
    bf16 = RMSPROP_DTYPE_BF16,
    f16 = RMSPROP_DTYPE_F16
};

/** A state component: optax's nu, mu (centered only), trace (momentum only). */
enum class Component : RmspropComponent { nu = RMSPROP_NU, mu = RMSPROP_MU, trace = RMSPROP_TRACE };

/** How weight decay is applied: coupled (g + wd*p, optax add_decayed_weights / PyTorch)
    or decoupled (p - p*wd*lr before the update, Keras 3). */
enum class WeightDecayKind : RmspropWeightDecayKind {
    coupled = RMSPROP_WEIGHT_DECAY_COUPLED,
    decoupled = RMSPROP_WEIGHT_DECAY_DECOUPLED
};

/** Which framework's RMSProp an optimizer reproduces. */
enum class Flavor : RmspropFlavor {
    optax = RMSPROP_FLAVOR_OPTAX,
    pytorch = RMSPROP_FLAVOR_PYTORCH,
    keras = RMSPROP_FLAVOR_KERAS,
    tf1 = RMSPROP_FLAVOR_TF1
};

/** The outcome of a successful update or step. */
enum class StepResult {
    applied,           ///< RMSPROP_OK
    skipped_non_finite ///< RMSPROP_SKIPPED_NON_FINITE: nothing changed (skip_non_finite on)
};

/** The loaded library's version (MAJOR * 10000 + MINOR * 100 + PATCH) and its string. */
inline std::uint32_t version_number() noexcept { return rmsprop_version_number(); }
inline const char *version_string() noexcept { return rmsprop_version_string(); }

/** The version of the header this program was compiled against. */
struct HeaderVersion {
    static constexpr std::uint32_t major = RMSPROP_VERSION_MAJOR;
    static constexpr std::uint32_t minor = RMSPROP_VERSION_MINOR;
    static constexpr std::uint32_t patch = RMSPROP_VERSION_PATCH;
    static constexpr std::uint32_t number = RMSPROP_VERSION_NUMBER;
    static constexpr const char *string = RMSPROP_VERSION_STRING;
};

/** Whether the loaded library can serve this header (same major version, and at least the
 *  header's version: within a major version functions and constants are only added). */
inline bool library_is_compatible() noexcept {
    const std::uint32_t lib = version_number();
    return lib / 10000 == HeaderVersion::major && lib >= HeaderVersion::number;
}

/** optax's learning-rate schedules. Move-only owner of an RmspropSchedule. */
class Schedule {
public:
    /** optax.constant_schedule(value) */
    static Schedule constant(double value) {
        return make([&](RmspropSchedule **out) { return rmsprop_schedule_constant(value, out); });
    }
    /** optax.linear_schedule(init_value, end_value, transition_steps, transition_begin=0) */
    static Schedule linear(double init_value, double end_value, std::int64_t transition_steps,
                           std::int64_t transition_begin = 0) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_linear(init_value, end_value, transition_steps, transition_begin, out);
        });
    }
    /** optax.polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0) */
    static Schedule polynomial(double init_value, double end_value, double power,
                               std::int64_t transition_steps, std::int64_t transition_begin = 0) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_polynomial(init_value, end_value, power, transition_steps,
                                               transition_begin, out);
        });
    }
    /** optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
     *  staircase=False, end_value=None) */
    static Schedule exponential_decay(double init_value, std::int64_t transition_steps, double decay_rate,
                                      std::int64_t transition_begin = 0, bool staircase = false,
                                      std::optional<double> end_value = std::nullopt) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_exponential_decay(init_value, transition_steps, decay_rate, transition_begin,
                                                      staircase, end_value ? &*end_value : nullptr, out);
        });
    }
    /** optax.cosine_decay_schedule(init_value, decay_steps, alpha=0, exponent=1) */
    static Schedule cosine_decay(double init_value, std::int64_t decay_steps, double alpha = 0.0,
                                 double exponent = 1.0) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_cosine_decay(init_value, decay_steps, alpha, exponent, out);
        });
    }
    /** optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
     *  end_value=0, exponent=1) */
    static Schedule warmup_cosine_decay(double init_value, double peak_value, std::int64_t warmup_steps,
                                        std::int64_t decay_steps, double end_value = 0.0,
                                        double exponent = 1.0) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps,
                                                        end_value, exponent, out);
        });
    }
    /** optax.warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps,
     *  transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None) */
    static Schedule warmup_exponential_decay(double init_value, double peak_value, std::int64_t warmup_steps,
                                             std::int64_t transition_steps, double decay_rate,
                                             std::int64_t transition_begin = 0, bool staircase = false,
                                             std::optional<double> end_value = std::nullopt) {
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_warmup_exponential_decay(init_value, peak_value, warmup_steps,
                                                             transition_steps, decay_rate, transition_begin,
                                                             staircase, end_value ? &*end_value : nullptr, out);
        });
    }
    /** optax.piecewise_constant_schedule(init_value, {boundary: scale, ...}) */
    static Schedule piecewise_constant(double init_value,
                                       std::initializer_list<std::pair<std::int64_t, double>> boundaries_and_scales) {
        std::vector<std::int64_t> boundaries;
        std::vector<double> scales;
        for (const auto &bs : boundaries_and_scales) {
            boundaries.push_back(bs.first);
            scales.push_back(bs.second);
        }
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_piecewise_constant(init_value, boundaries.data(), scales.data(),
                                                       boundaries.size(), out);
        });
    }
    /** optax.join_schedules(schedules, boundaries): the schedules are copied. */
    static Schedule join(std::initializer_list<std::reference_wrapper<const Schedule>> schedules,
                         span<const std::int64_t> boundaries) {
        std::vector<const RmspropSchedule *> handles;
        for (const Schedule &s : schedules) handles.push_back(s.get());
        return make([&](RmspropSchedule **out) {
            return rmsprop_schedule_join(handles.data(), handles.size(), boundaries.data(), boundaries.size(),
                                         out);
        });
    }

    /** The schedule's value at `count`, as jitted optax computes it for `dtype` parameters. */
    double value(std::int32_t count, Dtype dtype = Dtype::f32) const {
        double v = 0.0;
        detail::check(rmsprop_schedule_value(get(), count, static_cast<RmspropDtype>(dtype), &v));
        return v;
    }

    /** The C handle (still owned by this object). */
    const RmspropSchedule *get() const noexcept { return handle_.get(); }

private:
    struct Deleter {
        void operator()(RmspropSchedule *s) const noexcept { rmsprop_schedule_free(s); }
    };
    explicit Schedule(RmspropSchedule *s) noexcept : handle_(s) {}
    template <class F> static Schedule make(F &&create) {
        RmspropSchedule *s = nullptr;
        detail::check(create(&s));
        return Schedule(s);
    }
    std::unique_ptr<RmspropSchedule, Deleter> handle_;
};

/** Every argument of optax.rmsprop, starting at optax's defaults. Setters chain and throw
 *  rmsprop::Error for invalid values (the options are unchanged then). */
class Options {
public:
    /** optax.rmsprop(learning_rate) with every other argument at its default. */
    explicit Options(double learning_rate) {
        RmspropOptions *o = nullptr;
        detail::check(rmsprop_options_new(learning_rate, &o));
        handle_.reset(o);
    }
    /** optax.rmsprop(learning_rate=schedule); the schedule is copied. */
    explicit Options(const Schedule &schedule) : Options(0.0) { learning_rate(schedule); }

    Options &learning_rate(double lr) { return set(rmsprop_options_set_learning_rate(get(), lr)); }
    Options &learning_rate(const Schedule &s) {
        return set(rmsprop_options_set_learning_rate_schedule(get(), s.get()));
    }
    Options &decay(double v) { return set(rmsprop_options_set_decay(get(), v)); }
    Options &eps(double v) { return set(rmsprop_options_set_eps(get(), v)); }
    Options &initial_scale(double v) { return set(rmsprop_options_set_initial_scale(get(), v)); }
    Options &eps_in_sqrt(bool v) { return set(rmsprop_options_set_eps_in_sqrt(get(), v)); }
    Options &centered(bool v) { return set(rmsprop_options_set_centered(get(), v)); }
    /** momentum=value; std::nullopt means optax's None (no trace state). */
    Options &momentum(std::optional<double> v) {
        return set(v ? rmsprop_options_set_momentum(get(), *v) : rmsprop_options_clear_momentum(get()));
    }
    Options &nesterov(bool v) { return set(rmsprop_options_set_nesterov(get(), v)); }
    Options &bias_correction(bool v) { return set(rmsprop_options_set_bias_correction(get(), v)); }
    /** Skip steps with NaN/inf gradients (StepResult::skipped_non_finite). */
    Options &skip_non_finite(bool v) { return set(rmsprop_options_set_skip_non_finite(get(), v)); }
    /** Gradient transforms, applied in optax.chain order before the step. */
    Options &weight_decay(double wd, WeightDecayKind kind = WeightDecayKind::coupled) {
        return set(rmsprop_options_set_weight_decay(get(), wd, static_cast<RmspropWeightDecayKind>(kind)));
    }
    Options &maximize(bool v) { return set(rmsprop_options_set_maximize(get(), v)); }
    /** Reproduce another framework's RMSProp (Flavor::pytorch: torch.optim.RMSprop). */
    Options &flavor(Flavor f) {
        return set(rmsprop_options_set_flavor(get(), static_cast<RmspropFlavor>(f)));
    }
    /** optax.clip(max_delta); INFINITY = off. */
    Options &clip(double max_delta) { return set(rmsprop_options_set_clip(get(), max_delta)); }
    /** optax.clip_by_global_norm(max_norm); INFINITY = off. */
    Options &clip_by_global_norm(double max_norm) {
        return set(rmsprop_options_set_clip_by_global_norm(get(), max_norm));
    }

    RmspropOptions *get() const noexcept { return handle_.get(); }

private:
    struct Deleter {
        void operator()(RmspropOptions *o) const noexcept { rmsprop_options_free(o); }
    };
    Options &set(RmspropStatus s) {
        detail::check(s);
        return *this;
    }
    std::unique_ptr<RmspropOptions, Deleter> handle_;
};

/** optax.rmsprop's state over a layout of tensors, with optax's update and a fused step. */
class Optimizer {
public:
    /** optax init for tensors of `sizes[i]` elements in `dtype`; the options are copied. */
    Optimizer(const Options &options, span<const std::size_t> sizes, Dtype dtype = Dtype::f32)
        : sizes_(sizes.begin(), sizes.end()) {
        RmspropOptimizer *o = nullptr;
        detail::check(rmsprop_create(options.get(), sizes.data(), sizes.size(),
                                     static_cast<RmspropDtype>(dtype), &o));
        handle_.reset(o);
        for (std::size_t s : sizes_) total_ += s;
    }
    Optimizer(const Options &options, std::initializer_list<std::size_t> sizes, Dtype dtype = Dtype::f32)
        : Optimizer(options, span<const std::size_t>(sizes.begin(), sizes.size()), dtype) {}

    Optimizer(Optimizer &&other) noexcept
        : handle_(std::move(other.handle_)), sizes_(std::move(other.sizes_)),
          total_(std::exchange(other.total_, 0)) {
        other.sizes_.clear();
    }
    Optimizer &operator=(Optimizer &&other) noexcept {
        if (this != &other) {
            handle_ = std::move(other.handle_);
            sizes_ = std::move(other.sizes_);
            other.sizes_.clear();
            total_ = std::exchange(other.total_, 0);
        }
        return *this;
    }
    Optimizer(const Optimizer &) = delete;
    Optimizer &operator=(const Optimizer &) = delete;

    /** Take ownership of a handle created through the C API (rmsprop_create,
     *  rmsprop_create_from_checkpoint, ...): the Optimizer destroys it. Ownership passes even
     *  when this throws (the handle is destroyed then): rmsprop::Error for NULL
     *  (RMSPROP_ERR_NULL_POINTER), or when the layout cannot be read. */
    static Optimizer adopt(RmspropOptimizer *handle) {
        std::unique_ptr<RmspropOptimizer, Deleter> owned(handle);
        if (!owned) throw Error(RMSPROP_ERR_NULL_POINTER, "rmsprop::Optimizer::adopt: NULL handle");
        std::size_t n = 0;
        detail::check(rmsprop_num_tensors(owned.get(), &n));
        std::vector<std::size_t> sizes(n);
        for (std::size_t i = 0; i < n; i++) detail::check(rmsprop_tensor_size(owned.get(), i, &sizes[i]));
        std::size_t total = 0;
        detail::check(rmsprop_total_elements(owned.get(), &total));
        return Optimizer(std::move(owned), std::move(sizes), total);
    }

    /** Give up ownership: returns the handle (nullptr if there is none) and leaves this
     *  object empty, as if moved from. The caller must rmsprop_destroy the handle. */
    RmspropOptimizer *release() noexcept {
        sizes_.clear();
        total_ = 0;
        return handle_.release();
    }

    // ---- checkpoints (format: docs/checkpoint-format.md) ----

    /** A new optimizer from a checkpoint: its dtype, layout, configuration and state. */
    static Optimizer from_checkpoint(span<const std::uint8_t> checkpoint) {
        RmspropOptimizer *o = nullptr;
        detail::check(rmsprop_create_from_checkpoint(checkpoint.data(), checkpoint.size(), &o));
        return adopt(o);
    }
    /** A new optimizer from a checkpoint file (read whole, then as from_checkpoint). */
    static Optimizer from_checkpoint_file(const std::string &path) {
        std::vector<std::uint8_t> bytes = detail::read_file(path);
        return from_checkpoint(bytes);
    }

    /** The exact size in bytes of this optimizer's checkpoint. */
    std::size_t checkpoint_size() const {
        std::size_t n = 0;
        detail::check(rmsprop_checkpoint_size(h(), &n));
        return n;
    }
    /** The checkpoint as a new byte vector. */
    std::vector<std::uint8_t> save() const {
        std::vector<std::uint8_t> buf(checkpoint_size());
        std::size_t written = 0;
        detail::check(rmsprop_checkpoint_save(h(), buf.data(), buf.size(), &written));
        buf.resize(written);
        return buf;
    }
    /** Write the checkpoint into `buf` (at least checkpoint_size() bytes, else rmsprop::Error
     *  RMSPROP_ERR_BUFFER_TOO_SMALL and nothing written); returns the bytes written. */
    std::size_t save(span<std::uint8_t> buf) const {
        std::size_t written = 0;
        detail::check(rmsprop_checkpoint_save(h(), buf.data(), buf.size(), &written));
        return written;
    }
    /** Load a checkpoint of the same layout and dtype: configuration and state become the
     *  checkpoint's (the thread setting is kept); unchanged if it throws. */
    void load(span<const std::uint8_t> checkpoint) {
        detail::check(rmsprop_checkpoint_load(h(), checkpoint.data(), checkpoint.size()));
    }
    /** Save the checkpoint to a file, atomically (see rmsprop_checkpoint_save_file). */
    void save_file(const std::string &path) const { detail::check(rmsprop_checkpoint_save_file(h(), path.c_str())); }
    /** Load a checkpoint file, as load(). */
    void load_file(const std::string &path) { detail::check(rmsprop_checkpoint_load_file(h(), path.c_str())); }

    // ---- optax update / fused step over one flat buffer of all tensors ----

    /** optax update: `updates` receives the updates; it may be the same buffer as `grads`. */
    StepResult update(span<const float> grads, span<float> updates) {
        flat_lengths(grads.size(), updates.size());
        return result(rmsprop_update_f32(h(), grads.data(), updates.data(), grads.size()));
    }
    StepResult update(span<const double> grads, span<double> updates) {
        flat_lengths(grads.size(), updates.size());
        return result(rmsprop_update_f64(h(), grads.data(), updates.data(), grads.size()));
    }
    /** In-place optax update: the gradients are overwritten by the updates. */
    StepResult update(span<float> grads_in_updates_out) { return update(grads_in_updates_out, grads_in_updates_out); }
    StepResult update(span<double> grads_in_updates_out) { return update(grads_in_updates_out, grads_in_updates_out); }

    /** optax update + apply_updates, fused: params += update(grads). */
    StepResult step(span<float> params, span<const float> grads) {
        flat_lengths(params.size(), grads.size());
        return result(rmsprop_step_f32(h(), params.data(), grads.data(), params.size()));
    }
    StepResult step(span<double> params, span<const double> grads) {
        flat_lengths(params.size(), grads.size());
        return result(rmsprop_step_f64(h(), params.data(), grads.data(), params.size()));
    }

    /** Untyped flat update/step for element types C++ has no type for (bf16/f16 bits held
     *  in uint16_t, or a dtype chosen at run time): `n` elements of `dtype` at each pointer;
     *  `dtype` must be the optimizer's (rmsprop_update / rmsprop_step). */
    StepResult update_untyped(const void *grads, void *updates, std::size_t n, Dtype dtype) {
        return result(rmsprop_update(h(), grads, updates, n, static_cast<RmspropDtype>(dtype)));
    }
    StepResult step_untyped(void *params, const void *grads, std::size_t n, Dtype dtype) {
        return result(rmsprop_step(h(), params, grads, n, static_cast<RmspropDtype>(dtype)));
    }

    // ---- the same over a list of tensors (one span per tensor, layout order) ----

    StepResult update_tensors(span<const span<const float>> grads, span<const span<float>> updates) {
        return tensors<float>(grads, updates, rmsprop_update_tensors_f32);
    }
    StepResult update_tensors(span<const span<const double>> grads, span<const span<double>> updates) {
        return tensors<double>(grads, updates, rmsprop_update_tensors_f64);
    }
    StepResult step_tensors(span<const span<float>> params, span<const span<const float>> grads) {
        return tensors_step<float>(params, grads, rmsprop_step_tensors_f32);
    }
    StepResult step_tensors(span<const span<double>> params, span<const span<const double>> grads) {
        return tensors_step<double>(params, grads, rmsprop_step_tensors_f64);
    }
    /** Braced lists of tensors: opt.step_tensors({w, b}, {dw, db}). */
    StepResult update_tensors(std::initializer_list<span<const float>> grads,
                              std::initializer_list<span<float>> updates) {
        return update_tensors(list(grads), list(updates));
    }
    StepResult update_tensors(std::initializer_list<span<const double>> grads,
                              std::initializer_list<span<double>> updates) {
        return update_tensors(list(grads), list(updates));
    }
    StepResult step_tensors(std::initializer_list<span<float>> params, std::initializer_list<span<const float>> grads) {
        return step_tensors(list(params), list(grads));
    }
    StepResult step_tensors(std::initializer_list<span<double>> params,
                            std::initializer_list<span<const double>> grads) {
        return step_tensors(list(params), list(grads));
    }

    // ---- bfloat16 / float16 (std::uint16_t bit patterns; docs/element-types.md) ----

    /** optax update for a bf16 optimizer; `updates` may be the same buffer as `grads`. */
    StepResult update_bf16(span<const std::uint16_t> grads, span<std::uint16_t> updates) {
        flat_lengths(grads.size(), updates.size());
        return result(rmsprop_update_bf16(h(), grads.data(), updates.data(), grads.size()));
    }
    /** optax update for an f16 optimizer; `updates` may be the same buffer as `grads`. */
    StepResult update_f16(span<const std::uint16_t> grads, span<std::uint16_t> updates) {
        flat_lengths(grads.size(), updates.size());
        return result(rmsprop_update_f16(h(), grads.data(), updates.data(), grads.size()));
    }
    /** Fused step for a bf16 optimizer: params += update(grads), in bf16. */
    StepResult step_bf16(span<std::uint16_t> params, span<const std::uint16_t> grads) {
        flat_lengths(params.size(), grads.size());
        return result(rmsprop_step_bf16(h(), params.data(), grads.data(), params.size()));
    }
    /** Fused step for an f16 optimizer: params += update(grads), in f16. */
    StepResult step_f16(span<std::uint16_t> params, span<const std::uint16_t> grads) {
        flat_lengths(params.size(), grads.size());
        return result(rmsprop_step_f16(h(), params.data(), grads.data(), params.size()));
    }
    StepResult update_tensors_bf16(span<const span<const std::uint16_t>> grads,
                                   span<const span<std::uint16_t>> updates) {
        return tensors<std::uint16_t>(grads, updates, rmsprop_update_tensors_bf16);
    }
    StepResult update_tensors_f16(span<const span<const std::uint16_t>> grads,
                                  span<const span<std::uint16_t>> updates) {
        return tensors<std::uint16_t>(grads, updates, rmsprop_update_tensors_f16);
    }
    StepResult step_tensors_bf16(span<const span<std::uint16_t>> params,
                                 span<const span<const std::uint16_t>> grads) {
        return tensors_step<std::uint16_t>(params, grads, rmsprop_step_tensors_bf16);
    }
    StepResult step_tensors_f16(span<const span<std::uint16_t>> params,
                                span<const span<const std::uint16_t>> grads) {
        return tensors_step<std::uint16_t>(params, grads, rmsprop_step_tensors_f16);
    }
    /** State of a bf16 / f16 optimizer, as bit patterns (the tensor's size). */
    void get_state_bf16(Component component, std::size_t tensor, span<std::uint16_t> out) const {
        detail::check(rmsprop_get_state_bf16(h(), static_cast<RmspropComponent>(component), tensor,
                                             out.data(), out.size()));
    }
    void get_state_f16(Component component, std::size_t tensor, span<std::uint16_t> out) const {
        detail::check(rmsprop_get_state_f16(h(), static_cast<RmspropComponent>(component), tensor,
                                            out.data(), out.size()));
    }
    void set_state_bf16(Component component, std::size_t tensor, span<const std::uint16_t> values) {
        detail::check(rmsprop_set_state_bf16(h(), static_cast<RmspropComponent>(component), tensor,
                                             values.data(), values.size()));
    }
    void set_state_f16(Component component, std::size_t tensor, span<const std::uint16_t> values) {
        detail::check(rmsprop_set_state_f16(h(), static_cast<RmspropComponent>(component), tensor,
                                            values.data(), values.size()));
    }

    // ---- state ----

    /** Copy tensor `tensor`'s part of `component` into `out` (the tensor's size). */
    void get_state(Component component, std::size_t tensor, span<float> out) const {
        detail::check(rmsprop_get_state_f32(h(), static_cast<RmspropComponent>(component), tensor,
                                            out.data(), out.size()));
    }
    void get_state(Component component, std::size_t tensor, span<double> out) const {
        detail::check(rmsprop_get_state_f64(h(), static_cast<RmspropComponent>(component), tensor,
                                            out.data(), out.size()));
    }
    /** Tensor `tensor`'s part of `component` as a new vector of T (float or double). */
    template <class T> std::vector<T> state(Component component, std::size_t tensor) const {
        static_assert(detail::is_real<T>::value, "state<T>: T must be float or double");
        std::vector<T> v(tensor_size(tensor));
        get_state(component, tensor, span<T>(v));
        return v;
    }
    /** Overwrite tensor `tensor`'s part of `component` from `values` (the tensor's size). */
    void set_state(Component component, std::size_t tensor, span<const float> values) {
        detail::check(rmsprop_set_state_f32(h(), static_cast<RmspropComponent>(component), tensor,
                                            values.data(), values.size()));
    }
    void set_state(Component component, std::size_t tensor, span<const double> values) {
        detail::check(rmsprop_set_state_f64(h(), static_cast<RmspropComponent>(component), tensor,
                                            values.data(), values.size()));
    }
    bool has_state(Component component) const {
        bool v = false;
        detail::check(rmsprop_has_state(h(), static_cast<RmspropComponent>(component), &v));
        return v;
    }
    /** optax's counts: the schedule count and the bias-correction count. */
    struct Counts {
        std::int32_t schedule = 0;
        std::int32_t bias_correction = 0;
    };
    Counts counts() const {
        Counts c;
        detail::check(rmsprop_get_counts(h(), &c.schedule, &c.bias_correction));
        return c;
    }
    void set_counts(Counts c) { detail::check(rmsprop_set_counts(h(), c.schedule, c.bias_correction)); }
    /** Back to optax init: nu = initial_scale, mu = trace = 0, counts 0. */
    void reset() { detail::check(rmsprop_reset(h())); }
    std::uint64_t skipped_steps() const {
        std::uint64_t v = 0;
        detail::check(rmsprop_skipped_steps(h(), &v));
        return v;
    }

    // ---- hyperparameters between steps (optax.inject_hyperparams style) ----

    /** The learning rate the next step will use. */
    double current_learning_rate() const {
        double v = 0.0;
        detail::check(rmsprop_current_learning_rate(h(), &v));
        return v;
    }
    void set_learning_rate(double lr) { detail::check(rmsprop_set_learning_rate(h(), lr)); }
    void set_learning_rate(const Schedule &s) { detail::check(rmsprop_set_learning_rate_schedule(h(), s.get())); }
    void set_decay(double v) { detail::check(rmsprop_set_decay(h(), v)); }
    void set_eps(double v) { detail::check(rmsprop_set_eps(h(), v)); }
    /** initial_scale for the next reset(). */
    void set_initial_scale(double v) { detail::check(rmsprop_set_initial_scale(h(), v)); }
    void set_momentum(double v) { detail::check(rmsprop_set_momentum(h(), v)); }

    /** Worker threads: 0 = rayon's global pool, 1 = the calling thread, n = own pool of n. */
    void set_threads(std::size_t n) { detail::check(rmsprop_set_threads(h(), n)); }

    // ---- gradient transforms ----

    /** Which tensors weight decay applies to (one flag per tensor; empty = all). */
    void set_weight_decay_mask(const std::vector<bool> &mask) {
        std::unique_ptr<bool[]> m(new bool[mask.size() ? mask.size() : 1]);
        for (std::size_t i = 0; i < mask.size(); ++i) m[i] = mask[i];
        detail::check(rmsprop_set_weight_decay_mask(h(), m.get(), mask.size()));
    }
    /** The global gradient norm of the last step (NaN until clip_by_global_norm ran). */
    double last_grad_norm() const {
        double v = 0;
        detail::check(rmsprop_last_grad_norm(h(), &v));
        return v;
    }
    std::size_t threads() const {
        std::size_t v = 0;
        detail::check(rmsprop_get_threads(h(), &v));
        return v;
    }

    // ---- layout ----

    Dtype dtype() const {
        RmspropDtype v = 0;
        detail::check(rmsprop_dtype(h(), &v));
        return static_cast<Dtype>(v);
    }
    std::size_t num_tensors() const noexcept { return sizes_.size(); }
    std::size_t total_elements() const noexcept { return total_; }
    std::size_t tensor_size(std::size_t tensor) const {
        (void)h();
        if (tensor >= sizes_.size()) {
            throw Error(RMSPROP_ERR_OUT_OF_RANGE, "tensor index " + std::to_string(tensor) +
                                                      " out of range for " + std::to_string(sizes_.size()) +
                                                      " tensors");
        }
        return sizes_[tensor];
    }

    /** The C handle (still owned by this object), for calls the wrapper does not cover;
     *  nullptr after a move. */
    RmspropOptimizer *get() const noexcept { return handle_.get(); }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    struct Deleter {
        void operator()(RmspropOptimizer *o) const noexcept { rmsprop_destroy(o); }
    };

    Optimizer(std::unique_ptr<RmspropOptimizer, Deleter> handle, std::vector<std::size_t> sizes,
              std::size_t total) noexcept
        : handle_(std::move(handle)), sizes_(std::move(sizes)), total_(total) {}

    /** The handle, or rmsprop::Error for a moved-from optimizer. */
    RmspropOptimizer *h() const {
        if (!handle_) throw Error(RMSPROP_ERR_NULL_POINTER, "this rmsprop::Optimizer was moved from");
        return handle_.get();
    }

    template <class T> static span<const T> list(std::initializer_list<T> l) noexcept {
        return span<const T>(l.begin(), l.size());
    }
    static StepResult result(RmspropStatus s) {
        return detail::check(s) == RMSPROP_SKIPPED_NON_FINITE ? StepResult::skipped_non_finite
                                                              : StepResult::applied;
    }
    static void length_error(const std::string &what, std::size_t got, std::size_t want) {
        throw Error(RMSPROP_ERR_LENGTH_MISMATCH,
                    what + " has " + std::to_string(got) + " elements, the layout needs " + std::to_string(want));
    }
    void flat_lengths(std::size_t a, std::size_t b) const {
        (void)h();
        if (a != total_) length_error("buffer", a, total_);
        if (b != total_) length_error("buffer", b, total_);
    }
    void tensor_lengths(std::size_t count_a, std::size_t count_b) const {
        (void)h();
        if (count_a != sizes_.size() || count_b != sizes_.size()) {
            throw Error(RMSPROP_ERR_LENGTH_MISMATCH,
                        "got " + std::to_string(count_a) + " and " + std::to_string(count_b) +
                            " tensors, the layout has " + std::to_string(sizes_.size()));
        }
    }
    void tensor_length(std::size_t i, std::size_t got) const {
        if (got != sizes_[i]) length_error("tensor " + std::to_string(i), got, sizes_[i]);
    }

    template <class T, class F>
    StepResult tensors(span<const span<const T>> grads, span<const span<T>> updates, F fn) {
        tensor_lengths(grads.size(), updates.size());
        std::vector<const T *> g(grads.size());
        std::vector<T *> u(updates.size());
        for (std::size_t i = 0; i < g.size(); i++) {
            tensor_length(i, grads[i].size());
            tensor_length(i, updates[i].size());
            g[i] = grads[i].data();
            u[i] = updates[i].data();
        }
        return result(fn(h(), g.data(), u.data(), g.size()));
    }
    template <class T, class F>
    StepResult tensors_step(span<const span<T>> params, span<const span<const T>> grads, F fn) {
        tensor_lengths(params.size(), grads.size());
        std::vector<T *> p(params.size());
        std::vector<const T *> g(grads.size());
        for (std::size_t i = 0; i < p.size(); i++) {
            tensor_length(i, params[i].size());
            tensor_length(i, grads[i].size());
            p[i] = params[i].data();
            g[i] = grads[i].data();
        }
        return result(fn(h(), p.data(), g.data(), p.size()));
    }

    std::unique_ptr<RmspropOptimizer, Deleter> handle_;
    std::vector<std::size_t> sizes_;
    std::size_t total_ = 0;
};

} // namespace rmsprop

#endif /* RMSPROP_HPP */
