"""TensorFlow-era StyleGAN2 network pickles (NVlabs stylegan2 / stylegan2-ada TF), as data.

Such a file is a pickle of the tuple ``(G, D, Gs)``; each is a ``dnnlib.tflib.network.Network``
whose pickled state is a dict: ``version`` (4, or 5 from stylegan2-ada), ``name``,
``static_kwargs`` (the network's construction kwargs), ``components`` (sub-networks, e.g.
``mapping`` and ``synthesis``, nested the same way), ``build_module_src`` (the Python source
TensorFlow's loader executes to rebuild the graph), ``build_func_name`` and ``variables``, a list
of ``(name, numpy array)``; stylegan2-ada adds ``input_shapes``/``output_shapes``/``input_names``/
``output_names``.

The safe unpickler (:mod:`.safe_pickle`) maps the ``Network`` class to :class:`TFNetwork`, a plain
record of that state: ``build_module_src`` is kept as a string and never executed, numpy values
come from :mod:`.pickled_numpy`. :mod:`.tf_convert` turns the records into our networks.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from . import pickled_numpy

NETWORK_GLOBAL = "dnnlib.tflib.network.Network"
_VERSIONS = (4, 5)
_OPTIONAL_KEYS = ("input_shapes", "output_shapes", "input_names", "output_names")
_KEYS = {"version", "name", "static_kwargs", "components", "build_module_src"}
_KEYS |= {"build_func_name", "variables", *_OPTIONAL_KEYS}


class TFNetwork:
    """One ``dnnlib.tflib.network.Network`` from a pickle, as data (nothing from it is run).

    ``variables``: ``{name: array}`` of this network only, in file order; ``components``:
    ``{name: TFNetwork}``; ``build_module_src`` is kept only so that it can be shown.
    """

    version: int
    name: str
    static_kwargs: dict[str, Any]
    components: dict[str, TFNetwork]
    build_module_src: str
    build_func_name: str
    variables: dict[str, np.ndarray]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not {"version", "variables"} <= set(state):
            raise pickle.UnpicklingError("TensorFlow network without a state dict")
        unknown = sorted(str(k) for k in state if k not in _KEYS)
        if unknown:
            raise pickle.UnpicklingError(f"TensorFlow network with unknown fields {unknown}")
        if state["version"] not in _VERSIONS:
            raise pickle.UnpicklingError(
                f"TensorFlow network pickle version {state['version']!r} (4 or 5 supported)"
            )
        self.version = state["version"]
        self.name = _text(state.get("name"), "name")
        self.build_module_src = _text(state.get("build_module_src"), "build_module_src")
        self.build_func_name = _text(state.get("build_func_name"), "build_func_name")
        kwargs = pickled_numpy.resolve(state.get("static_kwargs") or {})
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise pickle.UnpicklingError("TensorFlow network whose static_kwargs are not a dict")
        self.static_kwargs = {k: _plain(v) for k, v in kwargs.items()}
        components = state.get("components") or {}
        if not isinstance(components, dict) or not all(_is_built(c) for c in components.values()):
            raise pickle.UnpicklingError("TensorFlow network whose components are not networks")
        self.components = dict(components)
        self.variables = _variables(state["variables"])

    def all_variables(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Variables of this network and its components, named ``component/.../name``."""
        found = {prefix + name: value for name, value in self.variables.items()}
        for name, component in self.components.items():
            found.update(component.all_variables(f"{prefix}{name}/"))
        return found

    def __repr__(self) -> str:
        return f"TFNetwork({self.name!r}, {self.build_func_name!r}, {len(self.variables)} vars)"


def _is_built(value: Any) -> bool:
    """A TFNetwork whose state has been set (a pickle could reference one before that)."""
    return isinstance(value, TFNetwork) and hasattr(value, "variables")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise pickle.UnpicklingError(f"TensorFlow network whose {what} is not text")
    return value


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers, tuples -> lists, so kwargs compare and print simply."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _variables(value: Any) -> dict[str, np.ndarray]:
    variables = pickled_numpy.resolve(value)
    if not isinstance(variables, (list, tuple)):
        raise pickle.UnpicklingError("TensorFlow network whose variables are not a list")
    out: dict[str, np.ndarray] = {}
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise pickle.UnpicklingError("TensorFlow variable that is not a (name, array) pair")
        name, array = item
        if isinstance(array, np.generic):
            array = np.asarray(array)
        if not isinstance(array, np.ndarray):
            raise pickle.UnpicklingError(
                f"TensorFlow variable '{name}' is a {type(array).__name__}, not a numpy array"
            )
        if name in out:
            raise pickle.UnpicklingError(f"TensorFlow variable '{name}' appears twice")
        out[name] = array
    return out


def is_tf_networks(obj: Any) -> bool:
    """Whether an unpickled object is a TF StyleGAN2 pickle's ``(G, D, Gs)`` tuple."""
    return isinstance(obj, tuple) and len(obj) == 3 and all(_is_built(n) for n in obj)


def holds_tf_network(obj: Any) -> bool:
    """Whether an unpickled object is, or is a tuple holding, a TF network (maybe incomplete)."""
    items = obj if isinstance(obj, tuple) else (obj,)
    return any(isinstance(n, TFNetwork) for n in items)
