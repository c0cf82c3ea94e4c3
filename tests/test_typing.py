"""The package installs like one: type hints on the public API, ``py.typed``, the LICENSE of the metadata."""

import inspect
import typing
from pathlib import Path

import keras_robust as kr

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("calibration", "datasets", "epsilon", "losses", "metrics", "models", "noise", "schedules")
# keras_robust.diagnostics (preflight, PreflightCheck) is not annotated yet: another engineer's package
# while the rest of the public API got its hints (issue 13, item 4).
NOT_YET = {"preflight", "PreflightCheck"}


def _public_callables():
    found = {}
    for name in kr.__all__:
        obj = getattr(kr, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and name not in NOT_YET:
            found[f"keras_robust.{name}"] = obj
    for module in MODULES:
        mod = getattr(kr, module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("keras_robust"):
                found[f"keras_robust.{module}.{name}"] = obj
    return found


def _signature_functions(obj):
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")  # inherited constructors are checked on their own class
        return [init] if init is not None else []
    return [obj]


def test_the_public_api_is_annotated():
    missing, checked = [], 0
    for qualname, obj in sorted(_public_callables().items()):
        for fn in _signature_functions(obj):
            checked += 1
            sig = inspect.signature(fn)
            for p in sig.parameters.values():
                if p.name != "self" and p.annotation is inspect.Parameter.empty:
                    missing.append(f"{qualname}: parameter {p.name}")
            if sig.return_annotation is inspect.Signature.empty:
                missing.append(f"{qualname}: return")
            typing.get_type_hints(fn)  # every annotation names something that exists
    assert checked > 60 and not missing, missing


def test_py_typed_is_package_data_and_the_license_matches_the_metadata():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (ROOT / "keras_robust" / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["keras_robust"]
    assert project["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
