"""The example of optax.rmsprop's documentation, through the rmsprop C library.

optax (for comparison):

    solver = optax.rmsprop(learning_rate=0.003)
    params = jnp.array([1., 2., 3.])
    print('Objective function: ', f(params))
    opt_state = solver.init(params)
    for _ in range(5):
        grad = jax.grad(f)(params)
        updates, opt_state = solver.update(grad, opt_state, params)
        params = optax.apply_updates(params, updates)
        print('Objective function: {:.2E}'.format(f(params)))

Run: python3 python/examples/quadratic.py   (after `pip install .`, or `cargo build --release`
in a checkout: the package is then taken from python/ and the library from target/release)
"""

import os
import sys

import numpy as np

# In a source checkout, use the package next to this file (an installed one works as well).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rmsprop  # noqa: E402


def f(x):
    return np.sum(x**2)  # simple quadratic function


def grad_f(x):
    return 2.0 * x  # jax.grad(f): float32 in, float32 out


solver = rmsprop.rmsprop(learning_rate=0.003)
params = np.array([1.0, 2.0, 3.0], dtype=np.float32)  # jnp.array default dtype
print("Objective function: ", f(params))
opt_state = solver.init(params)
for _ in range(5):
    grad = grad_f(params)
    opt_state.step(params, grad)  # update + apply_updates, in place
    print("Objective function: {:.2E}".format(f(params)))
