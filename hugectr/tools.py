"""`hugectr.tools`: re-exports `ctrflow.hugectr.tools`."""

from ctrflow.hugectr.tools import *  # noqa: F403
from ctrflow.hugectr.tools import __all__  # noqa: F401
