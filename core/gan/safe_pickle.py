"""Read NVlabs network pickles and torch checkpoints without running anything from the file.

An NVlabs network pickle (stylegan2-ada-pytorch, stylegan3) stores each network as a
*persistence record*: the pickle calls ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
with ``meta = {type, version, module_src, class_name, state}``, and the NVlabs loader then
``exec``\\ s ``module_src`` (the whole ``networks.py`` of the training run) to rebuild the class.
We never do that. :class:`SafeUnpickler` resolves only the globals in :data:`ALLOWED_GLOBALS`,
each mapped to a function of ours:

- the persistence hook returns a :class:`PersistentRecord` (class name, init kwargs, flat tensor
  state); ``module_src`` is dropped unread;
- tensors are rebuilt with weights-only semantics: the storage bytes inside the pickle are a
  ``torch.save`` payload that is read with ``torch.load(..., weights_only=True)``;
- ``OrderedDict``, ``set``, NVlabs' ``EasyDict`` and numpy arrays/scalars become plain data
  (numpy values through :mod:`.pickled_numpy`, plain numeric dtypes only);
- TensorFlow StyleGAN2 networks (``dnnlib.tflib.network.Network``) become
  :class:`.tf_pickle.TFNetwork` records; their embedded source is never run.

Any other global (``os.system``, ``builtins.exec``, a class from the pickled source ...) stops the
load before it is called, with a :class:`LatentmirrorError` that names the global and the file.

Torch checkpoints (``torch.save`` zip or legacy files, e.g. rosinality ``.pt``) go through
``torch.load(weights_only=True)``, with ``argparse.Namespace`` as the only extra allowed class
(rosinality's training script stores its command-line arguments).
"""

from __future__ import annotations

import argparse
import io
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import error
from . import pickled_numpy, tf_pickle

# ----------------------------------------------------------------------------------------------
# What a persistence record becomes.


@dataclass
class PersistentRecord:
    """One NVlabs persistent module, as data.

    ``state`` is flat like ``Module.state_dict()``: ``{"mapping.fc0.weight": Tensor, ...}``,
    parameters and persistent buffers of the module and all its submodules. ``attributes`` holds
    the module's other plain attributes (ints, floats, strings, numpy values ...) for diagnostics.
    """

    class_name: str
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


class _EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a dict whose instances accept pickle's BUILD step."""


def _plain(value: Any) -> Any:
    """Turn EasyDicts, OrderedDicts and numpy scalars into plain JSON-like Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _record_from_meta(meta: Any) -> PersistentRecord:
    """Our replacement for ``_reconstruct_persistent_obj``: data only, ``module_src`` unused."""
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("persistence record without a state dict")
    if meta.get("type", "class") != "class" or not isinstance(meta.get("class_name"), str):
        raise pickle.UnpicklingError("persistence record of an unknown type")
    state = meta["state"]
    record = PersistentRecord(
        class_name=meta["class_name"],
        init_args=tuple(_plain(state.get("_init_args") or ())),
        init_kwargs=_plain(dict(state.get("_init_kwargs") or {})),
    )
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, tensor in (state.get("_parameters") or {}).items():
        if tensor is not None:
            record.state[name] = _checked_tensor(tensor, name)
    for name, tensor in (state.get("_buffers") or {}).items():
        if tensor is not None and name not in skip:
            record.state[name] = _checked_tensor(tensor, name)
    for child_name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise pickle.UnpicklingError(f"submodule '{child_name}' is not a persistence record")
        for key, tensor in child.state.items():
            record.state[f"{child_name}.{key}"] = tensor
    record.attributes = {
        k: _plain(v)
        for k, v in pickled_numpy.resolve(state).items()
        if not k.startswith("_") and isinstance(v, (bool, int, float, str, tuple, np.ndarray))
    }
    return record


def _checked_tensor(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise pickle.UnpicklingError(f"'{name}' should be a tensor, found {type(value).__name__}")
    return value


# ----------------------------------------------------------------------------------------------
# Tensors, rebuilt from the storages inside the pickle.


_LOAD_FROM_BYTES = "torch.storage._load_from_bytes"


def _load_storage(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` with weights-only semantics: a tensor's storage, and
    nothing else, may come out of the embedded ``torch.save`` payload."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("tensor storage is not bytes")
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:  # torch refused a global in the payload
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        name = found.group(1) if found else _LOAD_FROM_BYTES
        raise RefusedContent(f"an object of class '{name}' in a tensor payload", name) from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        what = f"a {type(storage).__module__}.{type(storage).__qualname__} where a tensor's storage"
        raise RefusedContent(f"{what} belongs", _LOAD_FROM_BYTES)
    return storage


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    """``torch._utils._rebuild_tensor_v2`` without hooks: a plain tensor view of the storage."""
    return _tensor_view(storage, offset, size, stride, None)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *rest):
    """``torch._utils._rebuild_tensor_v3``: an untyped storage viewed as ``dtype``."""
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError("tensor dtype is not a torch dtype")
    return _tensor_view(storage, offset, size, stride, dtype)


def _tensor_view(storage, offset, size, stride, dtype) -> torch.Tensor:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError("tensor without a storage")
    ints = (offset, *size, *stride)
    if not all(isinstance(v, int) and v >= 0 for v in ints) or len(size) != len(stride):
        raise pickle.UnpicklingError("tensor with an invalid shape")
    if isinstance(storage, torch.TypedStorage):
        dtype, storage = storage.dtype, storage._untyped_storage
    tensor = torch.empty((0,), dtype=dtype)
    # set_ checks that the view stays inside the storage.
    return tensor.set_(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    """``torch._utils._rebuild_parameter(_with_state)``: the plain tensor."""
    return _checked_tensor(data, "parameter").detach()


def _codecs_encode(text, encoding="utf-8"):
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin1")


# ----------------------------------------------------------------------------------------------
# The allow list: every global a pickle may name, and what it resolves to.

ALLOWED_GLOBALS: dict[str, Callable | type] = {
    "torch_utils.persistence._reconstruct_persistent_obj": _record_from_meta,
    "torch.storage._load_from_bytes": _load_storage,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "collections.OrderedDict": OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "__builtin__.set": set,  # protocol-2 pickles use the Python 2 module name
    "__builtin__.frozenset": frozenset,
    "dnnlib.EasyDict": _EasyDict,
    "dnnlib.util.EasyDict": _EasyDict,
    "_codecs.encode": _codecs_encode,
    # numpy values (StyleGAN3 sizes and sampling rates, TensorFlow variables), rebuilt by us.
    **pickled_numpy.GLOBALS,
    # TensorFlow StyleGAN2 networks, as data records (their embedded source is never run).
    tf_pickle.NETWORK_GLOBAL: tf_pickle.TFNetwork,
}
# torch dtypes, only as values (``_rebuild_tensor_v3`` takes one).
ALLOWED_GLOBALS.update(
    {f"torch.{name}": getattr(torch, name) for name in ("float32", "float16", "bfloat16")}
)

# Hints for globals that tell what kind of file this is.
_HINTS = {
    "dnnlib.tflib": "only the network records of TensorFlow StyleGAN2 pickles "
    "('dnnlib.tflib.network.Network') are supported from TensorFlow's dnnlib",
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside the allow list."""

    def __init__(self, qualified_name: str):
        super().__init__(qualified_name)
        self.qualified_name = qualified_name


class RefusedContent(pickle.UnpicklingError):
    """An allowed global got content a model file does not hold (a payload of another kind)."""

    def __init__(self, what: str, qualified_name: str):
        super().__init__(what)
        self.what, self.qualified_name = what, qualified_name


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified not in ALLOWED_GLOBALS:
            raise RefusedGlobal(qualified)
        return ALLOWED_GLOBALS[qualified]

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in a network pickle")


def _refusal_message(qualified: str) -> str:
    hint = next((h for prefix, h in _HINTS.items() if qualified.startswith(prefix)), None)
    message = (
        f"refused to load: the pickle names '{qualified}', which is not on the allow list of "
        "tensors and plain data; nothing from the file was run"
    )
    return f"{message} ({hint})" if hint else message


def _content_refusal(what: str, qualified: str) -> str:
    return (
        f"refused: the file holds {what}, which a model file does not contain ({qualified}); "
        "nothing from the file was run"
    )


def load_pickle(data: bytes, path: str) -> Any:
    """Unpickle ``data`` (the bytes of ``path``) with :class:`SafeUnpickler`.

    Raises a LatentmirrorError naming ``path`` for a refused global, truncated or corrupt data.
    """
    try:
        return SafeUnpickler(io.BytesIO(data)).load()
    except RefusedGlobal as exc:
        raise error(_refusal_message(exc.qualified_name), file=path) from None
    except RefusedContent as exc:
        raise error(_content_refusal(exc.what, exc.qualified_name), file=path) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, RuntimeError) as exc:
        raise error(f"corrupt or truncated pickle: {_first_line(exc)}", file=path) from None
    except (AttributeError, IndexError, KeyError, MemoryError, OverflowError) as exc:
        raise error(
            f"corrupt pickle ({type(exc).__name__}: {_first_line(exc)})", file=path
        ) from None


# ----------------------------------------------------------------------------------------------
# torch.save files (rosinality .pt checkpoints).

_TORCH_SAFE_GLOBALS = [argparse.Namespace]
# torch's wording changes between versions ("Unsupported global: GLOBAL a.b", "unsupported GLOBAL
# a.b whose module a is blocked"); the global's name follows the word GLOBAL in all of them.
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def load_torch(data: bytes, path: str) -> Any:
    """``torch.load(weights_only=True)`` of ``data`` on CPU, errors naming ``path``.

    ``argparse.Namespace`` is the only class allowed beyond torch's own weights-only list.
    """
    try:
        with torch.serialization.safe_globals(_TORCH_SAFE_GLOBALS):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = _UNSUPPORTED_GLOBAL.search(text)
        if found:
            raise error(_refusal_message(found.group(1)), file=path) from None
        if "weights only load failed" in text.lower():  # torch's advice after it is not ours
            raise error(
                _content_refusal("objects outside the weights-only allow list", "torch.load"),
                file=path,
            ) from None
        raise error(f"corrupt torch file: {_first_line(exc)}", file=path) from None
    except (EOFError, RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise error(f"corrupt or truncated torch file: {_first_line(exc)}", file=path) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
