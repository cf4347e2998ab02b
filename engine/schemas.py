"""Finding a Pydantic model by name: a module or class in ``schemas/``, or ``file.py:Class``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from enum import Enum
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from engine.errors import SchemaError

PACKAGE = "schemas"
DEFAULT_SCHEMA = "transactions"


def _models(module: ModuleType) -> list[type[BaseModel]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseModel)
        and obj is not BaseModel
        and obj.__module__ == module.__name__
        and not obj.__name__.startswith("_")
    ]


def _pick(module: ModuleType, class_name: str | None, label: str, where: str) -> type[BaseModel]:
    """The model ``class_name`` of ``module`` (``where`` names it for people: the file as
    given, or the module in schemas/), or its one or primary model."""
    models = _models(module)
    if class_name is not None:
        for model in models:
            if model.__name__ == class_name:
                return model
        found = getattr(module, class_name, None)
        if found is None:
            problem = f"no Pydantic model named {class_name!r} in {where}"
        else:
            problem = f"{class_name!r} in {where} is {_kind(found)}"
            if not (inspect.isclass(found) and issubclass(found, BaseModel)):
                problem += ", not a Pydantic model"
        names = ", ".join(sorted(m.__name__ for m in models))
        hint = f"its models: {names}" if names else "it defines no Pydantic model"
        raise SchemaError(label, problem, hint=hint)
    primary = getattr(module, "__schema__", None)
    if isinstance(primary, type) and issubclass(primary, BaseModel):
        return primary
    if len(models) == 1:
        return models[0]
    names = ", ".join(sorted(m.__name__ for m in models)) or "none"
    raise SchemaError(
        label, f"module defines {len(models)} models ({names})", hint=f"use {label}:ClassName"
    )


def _kind(value: object) -> str:
    if inspect.isclass(value):
        if issubclass(value, BaseModel):  # one _models leaves out
            if value.__name__.startswith("_"):
                return "a private model"
            return f"a model imported from {value.__module__}"
        return "an enum" if issubclass(value, Enum) else "a class"
    if inspect.isroutine(value):
        return "a function"
    if inspect.ismodule(value):
        return "a module"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} value"


def available() -> list[tuple[str, type[BaseModel]]]:
    """(name, model) for every model in the schemas package."""
    package = importlib.import_module(PACKAGE)
    found: list[tuple[str, type[BaseModel]]] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        for model in _models(module):
            found.append((f"{info.name}:{model.__name__}", model))
    return sorted(found, key=lambda item: item[0])


def load_schema(spec: str) -> type[BaseModel]:
    """A model by name: ``transactions``, ``transactions:Transaction`` or ``Transaction`` (in
    ``schemas/``), ``package.module:Class`` (an importable module, as uvicorn and dlt name
    applications), or ``path/file.py:Class``. Without ``:Class``, the module's one model (or
    the one its ``__schema__`` names); a wrong class name lists the models the module has."""
    target, _, class_name = spec.partition(":")
    if target.endswith(".py"):
        return _from_file(spec, target, class_name or None)
    module = _import(spec, f"{PACKAGE}.{target}")
    if module is not None:
        return _pick(module, class_name or None, spec, f"{PACKAGE}/{target}.py")
    if "." not in target:
        for _name, model in available():
            if model.__name__ == target and not class_name:
                return model
    module = _import(spec, target) if target else None
    if module is not None:
        return _pick(module, class_name or None, spec, f"module {target}")
    known = ", ".join(name for name, _ in available())
    raise SchemaError(
        spec,
        "not found",
        hint=f"known schemas: {known}; or name a module, package.module:Class, or a file, "
        "path/to/file.py:Class",
    )


def _import(spec: str, name: str) -> ModuleType | None:
    """The module ``name``, or None when it does not exist (an error inside it is reported)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None  # the module itself (or its package) is missing
        raise SchemaError(spec, f"importing {name} failed: {exc}") from exc
    except Exception as exc:
        raise SchemaError(spec, f"importing {name} failed: {type(exc).__name__}: {exc}") from exc


def _from_file(spec: str, target: str, class_name: str | None) -> type[BaseModel]:
    path = Path(target)
    if not path.is_file():
        raise SchemaError(spec, f"no such file {target}")
    name = f"_user_schema_{abs(hash(path.resolve()))}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SchemaError(spec, "cannot import the file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        raise SchemaError(spec, f"importing the file failed: {type(exc).__name__}: {exc}") from exc
    return _pick(module, class_name, spec, target)


def describe_schemas() -> list[tuple[str, str, str]]:
    """(name to pass to --schema, target table, first docstring line) for each model."""
    from engine.validation.storage_options import table_name

    rows = []
    for name, model in available():
        doc = (model.__doc__ or "").strip().splitlines()
        rows.append((name, table_name(model), doc[0] if doc else ""))
    return rows
