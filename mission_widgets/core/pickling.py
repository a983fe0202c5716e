"""How values that JSON cannot hold travel in save files: as base64 pickles (cloudpickle
when needed, so notebook functions travel by value).

Below checkpoint and values, which both need it; standard library only at import time.
"""

from __future__ import annotations

import base64

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def encode_value(value: Any) -> Any:
    """JSON as is when possible, else a cloudpickle blob (for results and executors)."""
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {"__pickle__": pickle_b64(value), "repr": repr(value)[:200]}


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "__pickle__" in value:
        return unpickle_b64(value["__pickle__"])
    return value


def pickle_b64(value: Any) -> str:
    """Pickle for save files with cloudpickle, so notebook functions travel by value.

    A worker whose executors are all importable never loaded cloudpickle (its payload was
    plain references): there the stdlib pickler gives the same bytes without the import.
    """
    import pickle
    import sys

    from_main = "__main__" in (getattr(value, "__module__", None), type(value).__module__)
    if "cloudpickle" not in sys.modules and not from_main:
        try:
            return base64.b64encode(pickle.dumps(value)).decode("ascii")
        except Exception:
            pass  # a lambda or closure: cloudpickle below
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")


def unpickle_b64(text: str) -> Any:
    import pickle

    return pickle.loads(base64.b64decode(text))
