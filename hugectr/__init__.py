"""HugeCTR v3.5's Python module, provided by ctrflow: `import hugectr` runs v3.5 scripts unchanged.

Everything is re-exported from `ctrflow.hugectr`, including `__version__` ("3.5.0"), every enum and its
exported values, and the submodules `hugectr.tools`, `hugectr.inference` and `hugectr.data`.
"""

from ctrflow.hugectr import *  # noqa: F403
from ctrflow.hugectr import __all__, __version__  # noqa: F401

from . import data, inference, tools  # type: ignore[no-redef]  # noqa: F401
