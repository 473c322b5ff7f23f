"""Typer's parameter coercion for the kinds loomctl declares, without pydantic (see :func:`coerce_directly`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def coerce_directly() -> None:
    """Typer 0.2x coerces every parameter value through a pydantic TypeAdapter: each command paid a pydantic
    import and a schema per parameter (about 0.2 s, as much as the rest of `loomctl lag show SERVICE`
    together). For the kinds loomctl declares (str, list[str], an Enum's choices, a Path, a ``parser=``)
    the adapter only runs Typer's own conversion, so this runs that conversion directly. Anything else,
    and any value the conversion refuses, still goes through Typer's adapter, so values and error
    messages are Typer's. A Typer without these internals keeps its own coercion."""
    try:
        from dataclasses import dataclass
        from enum import Enum

        from typer import _coercion, _param_types, core

        base, build = _coercion.RuntimeParam, _coercion.build_runtime_param
        choice, path, routes_to_path = _param_types.coerce_cli_choice, _param_types.coerce_cli_path, _param_types.routes_to_path
        parameter = core._TyperParameter
        parameter.get_runtime_param  # noqa: B018  (present, or this Typer is another)
    except (ImportError, AttributeError):
        return

    def flag(value: Any) -> bool:
        if type(value) is not bool:
            raise TypeError(value)  # "yes", "0" from an environment variable: pydantic's bool rules
        return value

    def text(value: Any) -> str:
        if type(value) is not str:
            raise TypeError(value)
        value.encode("utf-8")  # lone surrogates: pydantic refuses them, with its own message
        return value

    @dataclass(frozen=True)
    class Direct(base):  # type: ignore[misc, valid-type]
        convert: Callable[[Any, Any, Any], Any]
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value, param, ctx)
            except (ValueError, TypeError, AssertionError):  # what the adapter reports in its words
                return build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def converter(descriptor: Any) -> Callable[[Any, Any, Any], Any] | None:
        annotation, info = descriptor.annotation, descriptor.parameter_info
        if descriptor.file_annotation is not None:
            return None
        if info.parser is not None:
            parser = info.parser
            return lambda value, param, ctx: parser(value)
        if annotation is str:
            return lambda value, param, ctx: text(value)
        if annotation is bool:
            return lambda value, param, ctx: flag(value)
        if annotation == list[str]:
            return lambda value, param, ctx: [text(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            choices, case_sensitive = tuple(annotation), info.case_sensitive
            return lambda value, param, ctx: choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        if isinstance(annotation, type) and issubclass(annotation, Path) and routes_to_path(annotation, info):
            path_type = info.path_type or annotation
            return lambda value, param, ctx: path(value, info, path_type=path_type, param=param, ctx=ctx)
        return None

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            convert = converter(self.type_descriptor)
            descriptor = self.type_descriptor
            self._runtime_param = (
                build(descriptor)
                if convert is None
                else Direct(
                    parameter_info=descriptor.parameter_info,
                    annotation=descriptor.annotation,
                    convert=convert,
                    descriptor=descriptor,
                )
            )
        return self._runtime_param

    parameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]  # the patch this module is
