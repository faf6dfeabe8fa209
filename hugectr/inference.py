"""`hugectr.inference`: re-exports `ctrflow.hugectr.inference`."""

from ctrflow.hugectr.inference import *  # noqa: F403
from ctrflow.hugectr.inference import __all__  # noqa: F401
