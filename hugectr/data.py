"""`hugectr.data`: re-exports `ctrflow.hugectr.data`."""

from ctrflow.hugectr.data import *  # noqa: F403
from ctrflow.hugectr.data import __all__  # noqa: F401
