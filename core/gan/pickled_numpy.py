"""numpy arrays, dtypes and scalars from a network pickle, rebuilt by our own code.

numpy pickles an array as ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')``
followed by a BUILD step with ``(version, shape, dtype, is_fortran, raw_bytes)``, and a dtype as
``numpy.dtype('f4', False, True)`` followed by a BUILD step with
``(3, byteorder, subarray, names, fields, elsize, alignment, flags)``. Letting numpy's own
``__setstate__`` run on such untrusted tuples is not safe: a dtype's state can set fields and
flags (even the has-object flag), and an object array's state is a list of arbitrary objects.

So the unpickler resolves these globals to the stand-ins below. They accept only plain numeric
dtypes (bool, signed/unsigned integers, floats) with no fields or sub-arrays, check that the raw
bytes match the shape exactly, and build the array with ``np.frombuffer``. An array stand-in
becomes a real array through :func:`resolve`, which the containers call (numpy values only ever
appear inside network records).
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np

# Plain numeric dtype codes numpy writes in a pickle; anything else ('O', 'V', 'U', 'M' ...)
# is refused.
NUMERIC_CODES = frozenset(
    ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "?"]
    + ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    + ["float16", "float32", "float64"]
)
_BYTEORDERS = {"<": "<", ">": ">", "|": "=", "=": "="}


class PickledDtype:
    """Stand-in for ``numpy.dtype(code, align, copy)``; :attr:`dtype` after its BUILD step."""

    def __init__(self, code: Any, align: Any = False, copy: Any = False):
        if not isinstance(code, str) or code not in NUMERIC_CODES:
            what = "object" if code in ("O", "O8", "object") else repr(code)[:40]
            raise pickle.UnpicklingError(
                f"numpy dtype {what} refused: only plain numeric arrays are allowed "
                "(object arrays could unpickle anything)"
            )
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[0] not in (3, 4):
            raise pickle.UnpicklingError("numpy dtype with an unknown state")
        order, rest = state[1], state[2:5]
        if order not in _BYTEORDERS or any(part is not None for part in rest):
            raise pickle.UnpicklingError("numpy dtype with fields or sub-arrays refused")
        self.dtype = self.dtype.newbyteorder(_BYTEORDERS[order])


class PickledArray:
    """Stand-in for a ``numpy.ndarray`` being unpickled; :attr:`array` after its BUILD step."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise pickle.UnpicklingError("numpy array with an unknown state")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, PickledDtype):
            raise pickle.UnpicklingError("numpy array without a plain numeric dtype")
        if not isinstance(raw, (bytes, bytearray)):
            # A list here is an object array's contents; bytes are the only plain payload.
            raise pickle.UnpicklingError("numpy array whose data is not raw bytes refused")
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError("numpy array with an invalid shape")
        expected = math.prod(shape) * dtype.dtype.itemsize
        if len(raw) != expected:
            raise pickle.UnpicklingError(
                f"numpy array of shape {list(shape)} holds {len(raw)} bytes, not {expected}"
            )
        flat = np.frombuffer(bytes(raw), dtype=dtype.dtype)
        array = flat.reshape(shape, order="F" if fortran else "C")
        # A writable native-order copy (np.ascontiguousarray would turn 0-d into 1-d).
        self.array = np.array(array, dtype=dtype.dtype.newbyteorder("="), order="C")


def reconstruct(subtype: Any, shape: Any, code: Any) -> PickledArray:
    """``numpy.core.multiarray._reconstruct``: only plain ``ndarray`` (our stand-in class)."""
    if subtype is not PickledArray:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    return PickledArray()


def scalar(dtype: Any, data: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar(dtype, raw_bytes)``: one plain numeric value."""
    if not isinstance(dtype, PickledDtype) or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("only numeric numpy scalars are allowed")
    if len(data) != dtype.dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar with the wrong number of bytes")
    return np.frombuffer(bytes(data), dtype=dtype.dtype)[0]


def resolve(value: Any) -> Any:
    """``value`` with every array stand-in replaced by its array (in lists, tuples, dicts)."""
    if isinstance(value, PickledArray):
        if value.array is None:
            raise pickle.UnpicklingError("numpy array without data")
        return value.array
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v) for v in value)
    return value


# The globals a pickle names for numpy values (numpy 1.x and 2.x module names).
GLOBALS = {
    "numpy.core.multiarray._reconstruct": reconstruct,
    "numpy._core.multiarray._reconstruct": reconstruct,
    "numpy.core.multiarray.scalar": scalar,
    "numpy._core.multiarray.scalar": scalar,
    "numpy.ndarray": PickledArray,
    "numpy.dtype": PickledDtype,
}
