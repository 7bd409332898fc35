"""rmsprop_ctypes: the old name of :mod:`rmsprop.lowlevel` (kept so existing scripts run).

``import rmsprop_ctypes`` (with this directory on ``sys.path``) gives the very same module
object as ``from rmsprop import lowlevel``. New code: ``import rmsprop``.
"""

import sys

from rmsprop import lowlevel as _lowlevel

sys.modules[__name__] = _lowlevel
