"""scikit-learn's estimator parameter contract without importing scikit-learn.

Calibrators and fusers are applied at scan time with numpy alone, so they cannot subclass
:class:`sklearn.base.BaseEstimator` (importing scikit-learn pulls in SciPy: over a second of
start-up). :class:`ParamsEstimator` gives them what scikit-learn's tools use of an estimator:
``get_params``/``set_params`` read from ``__init__``'s signature (so
:func:`sklearn.base.clone`, grid searches and pipelines work), a parameter ``repr``, and
``__sklearn_tags__`` (built, with scikit-learn already imported, only when scikit-learn asks).
scikit-learn itself is imported only inside ``fit``.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["ParamsEstimator"]


class ParamsEstimator:
    """Base of fakescope's estimators: ``__init__`` stores each keyword argument unchanged
    under its own name, as scikit-learn's convention asks."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` parameters (and, when ``deep``, those of nested estimators)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set ``__init__`` parameters (``name__sub`` for a nested estimator's); returns self."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters: {valid}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags  # only scikit-learn (>= 1.6) asks

        return Tags(estimator_type=None, target_tags=TargetTags(required=True))

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in self._param_names()
            if getattr(self, name) is not defaults[name].default
            and getattr(self, name) != defaults[name].default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"
