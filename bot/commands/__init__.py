"""Feature handlers, one module per feature, written once for every platform.

Each module declares its feature once, as a module-level `feature = Feature(...)`;
`declared_features` finds them, so adding a feature adds no line here."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from bot.core.feature import Feature


@cache
def declared_features() -> tuple[Feature, ...]:
    features = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        declared = getattr(module, "feature", None)
        if not isinstance(declared, Feature):
            raise TypeError(f"{module.__name__} declares no `feature = Feature(...)`")
        if declared.name != module_info.name:
            raise TypeError(
                f"{module.__name__} declares feature '{declared.name}'; "
                f"a feature is named after its module"
            )
        features.append(declared)
    return tuple(features)
