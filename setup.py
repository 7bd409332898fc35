"""Only the wheel tag and where the build writes; everything else is in pyproject.toml.

The package carries a plain C library that it loads with ctypes: nothing in it depends on the
CPython ABI, so one wheel serves every Python 3 on its platform (py3-none-<platform>) instead of
being tagged for the interpreter that happened to build it.
"""

import os

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel


class bdist_wheel_any_python(bdist_wheel):
    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


# Build products go under cargo's target/ (ignored, and wiped by `cargo clean`), not into build/
# (where the CMake examples put theirs) or python/ (the sources). egg_info needs it to exist.
BUILD_BASE = os.path.join("target", "python-build")
os.makedirs(BUILD_BASE, exist_ok=True)
setup(
    cmdclass={"bdist_wheel": bdist_wheel_any_python},
    options={
        "build": {"build_base": BUILD_BASE},
        "egg_info": {"egg_base": BUILD_BASE},
    },
)
