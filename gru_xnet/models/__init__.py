"""The model registry: every model the framework trains, by name, plus your own from a file or module.

An entry is one module's `ModelSpec` (see `gru_xnet.models.spec`): the rest of the code asks the entry
for its input representation, constructor, defaults and search space, never branches on a name.
"""

from __future__ import annotations

from gru_xnet.config import ConfigError
from gru_xnet.models import de_linear, deep, eegnet, gruxnet, shallow
from gru_xnet.models.spec import ModelSpec
from gru_xnet.models.user import load_user_spec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    gruxnet.SPEC, eegnet.SPEC, shallow.SPEC, deep.SPEC, de_linear.DE_LOGREG, de_linear.DE_SVM)}


def model_spec(name: str) -> ModelSpec:
    """The entry registered as `name`, or a user's `file.py:function` / `package.module:function` loaded now."""
    if name in MODELS:
        return MODELS[name]
    if ":" in name:
        return load_user_spec(name)
    raise ConfigError(f"config key 'model.name' = {name!r} is invalid: expected one of {', '.join(MODELS)}, "
                      "'path/to/file.py:function' or 'package.module:function'")
