"""Former home of the backends, kept so older imports work: import from
:mod:`~mission_widgets.runtime.backend`, :mod:`~mission_widgets.runtime.registry` and the
backend modules instead."""

from .backend import Backend, ExitCallback
from .registry import make_backend
from .subprocess_backend import SubprocessBackend, worker_environment
from .thread_backend import ThreadBackend

__all__ = [
    "Backend",
    "ExitCallback",
    "SubprocessBackend",
    "ThreadBackend",
    "make_backend",
    "worker_environment",
]
