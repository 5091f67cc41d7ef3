"""Your own model: `--model path/to/file.py:make` or `--model package.module:make`.

`make(input_shape=..., n_classes=K, **params)` returns a `torch.nn.Module` (trained by the shared engine)
or a scikit-learn classifier (trained like the DE pipelines); naming `sampling_rate` or `channels` in its
signature gets it those too (`gru_xnet.models.spec.INPUT_ARGUMENTS`). `make.representation`, when set, names
the input it takes. A file is read once on the driver and travels as source text (a `UserBuild` pickles
as that text), so workers on other nodes run the very code the driver hashed; a module must be
importable wherever the workers run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import types
from pathlib import Path
from typing import Any, Callable

from gru_xnet.config import ConfigError
from gru_xnet.models.spec import ModelSpec
from gru_xnet.representations import REPRESENTATIONS


def _refuse(reference: str, problem: str) -> ConfigError:
    return ConfigError(f"config key 'model.name' = {reference!r}: {problem}")


class UserBuild:
    """`make` from a user's file, executed from its source text; pickled as (reference, text), not as code objects."""

    def __init__(self, reference: str, path: str, text: str):
        self.reference, self.path, self.text = reference, path, text
        module = types.ModuleType(f"gru_xnet_user_model_{hashlib.sha256(text.encode()).hexdigest()[:12]}")
        module.__file__ = path
        try:
            exec(compile(text, path, "exec"), module.__dict__)  # noqa: S102 - the user's own model file, chosen to run
        except Exception as exc:  # a user's file may fail in any way: name it and the error
            raise _refuse(reference, f"executing {path} failed: {type(exc).__name__}: {exc}") from exc
        self.make = _attribute(reference, module, reference.rsplit(":", 1)[1])

    def __call__(self, **kwargs: Any) -> Any:
        return self.make(**kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        """`make`'s own signature, so the registry passes it the input keywords it names."""
        return inspect.signature(self.make)

    def __reduce__(self):
        return UserBuild, (self.reference, self.path, self.text)


def _attribute(reference: str, module: types.ModuleType, name: str) -> Callable:
    make = getattr(module, name, None)
    if not callable(make):
        raise _refuse(reference, f"{module.__file__} defines no function {name!r}; expected "
                                 f"def {name}(input_shape, n_classes, **params)")
    return make


def load_user_spec(reference: str) -> ModelSpec:
    """The registry entry of a user's `file.py:function` or `package.module:function`; ConfigError when it cannot load."""
    target, name = reference.rsplit(":", 1)
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise _refuse(reference, f"cannot read {path}: {exc}") from exc
        build: Callable = UserBuild(reference, str(path), text)
        make = build.make
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # ImportError, or the module failing while it runs
            raise _refuse(reference, f"cannot import {target}: {type(exc).__name__}: {exc}") from exc
        make = build = _attribute(reference, module, name)
        path = Path(module.__file__ or "").resolve()
        text = path.read_text() if path.is_file() else ""
    representation = getattr(make, "representation", None)
    if representation is not None and representation not in REPRESENTATIONS:
        raise _refuse(reference, f"{name}.representation = {representation!r}; expected one of "
                                 f"{', '.join(REPRESENTATIONS)} or no attribute")
    sha = hashlib.sha256(text.encode()).hexdigest()
    return ModelSpec(name=reference, build=build, representation=representation,
                     summary=f"user model {reference} (source SHA-256 {sha[:16]})",
                     origin={"path": str(path), "source_sha256": sha})
