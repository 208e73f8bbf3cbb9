"""The merge-policy table of a model: every leaf field's wire path, policy and validator."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, JsonValue, TypeAdapter
from pydantic.fields import FieldInfo

from hub.models.base import Policy


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One leaf field: where it is on the wire, how it merges, how its values validate."""

    path: str  # dotted camelCase wire path, e.g. "metadata.status"
    policy: Policy
    adapter: TypeAdapter[Any]  # the whole value
    item: TypeAdapter[Any] | None  # one element, for SET fields

    def dump(self, value: Any) -> JsonValue:
        """The JSON form of an already validated value."""
        dumped: JsonValue = self.adapter.dump_python(value, mode="json", by_alias=True)
        return dumped

    def dump_item(self, value: Any) -> JsonValue:
        assert self.item is not None
        dumped: JsonValue = self.item.dump_python(value, mode="json", by_alias=True)
        return dumped


# What `json.dumps(value, sort_keys=True, separators=(",", ":"))` makes, without building
# an encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical(value: JsonValue) -> str:
    """A stable text form of a JSON value: the identity of set elements and MV values."""
    return _CANONICAL.encode(value)


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _policy(info: FieldInfo) -> Policy | None:
    return next((m for m in info.metadata if isinstance(m, Policy)), None)


def _list_item(annotation: Any) -> Any | None:
    return get_args(annotation)[0] if get_origin(annotation) is list else None


@dataclass(frozen=True, slots=True)
class PolicyTable:
    """The leaves of one model, by wire path and by Python dotted name."""

    fields: Mapping[str, FieldSpec]
    aliases: Mapping[str, str]  # python dotted name -> wire path
    nodes: frozenset[str]  # paths of nested objects (not leaves)

    def resolve(self, path: str) -> FieldSpec | None:
        return self.fields.get(self.aliases.get(path, path))


def _walk(
    model: type[BaseModel],
    prefix: str,
    py_prefix: str,
    fields: dict[str, FieldSpec],
    aliases: dict[str, str],
    nodes: set[str],
) -> None:
    for name, info in model.model_fields.items():
        wire = info.alias or name
        path, py_path = f"{prefix}{wire}", f"{py_prefix}{name}"
        explicit = _policy(info)
        annotation = info.annotation
        if annotation is None:  # unset only: a field typed `None` says NoneType
            raise TypeError(f"{model.__name__}.{name}: a field needs a type annotation")
        nested = _unwrap_model(annotation)
        if nested is not None and explicit is None:
            nodes.add(path)
            aliases[py_path] = path
            _walk(nested, f"{path}.", f"{py_path}.", fields, aliases, nodes)
            continue
        item = _list_item(annotation)
        policy = explicit or (Policy.SET if item is not None else Policy.LWW)
        whole = [m for m in info.metadata if not isinstance(m, Policy)]
        # Built at run time, an Annotated is a plain special form to a type checker: Any here.
        form: Any = Annotated[annotation, *whole] if whole else annotation
        adapter: TypeAdapter[Any] = TypeAdapter(form)
        fields[path] = FieldSpec(
            path,
            policy,
            adapter,
            TypeAdapter(item) if policy is Policy.SET and item is not None else None,
        )
        aliases[py_path] = path


@cache
def policy_table(model: type[BaseModel]) -> PolicyTable:
    """The policy table of `model` (built once per model class)."""
    fields: dict[str, FieldSpec] = {}
    aliases: dict[str, str] = {}
    nodes: set[str] = set()
    _walk(model, "", "", fields, aliases, nodes)
    for spec in fields.values():
        if spec.policy is Policy.SET and spec.item is None:
            raise TypeError(f"{model.__name__}.{spec.path}: a SET field must be a list")
    return PolicyTable(fields, aliases, frozenset(nodes))


def flatten(table: PolicyTable, data: Mapping[str, JsonValue], prefix: str = "") -> dict[str, Any]:
    """Nested wire data -> {leaf path: raw value}; raises KeyError naming an unknown path."""
    leaves: dict[str, Any] = {}
    for key, value in data.items():
        raw_path = f"{prefix}{key}"
        path = table.aliases.get(raw_path, raw_path)
        if path in table.nodes:
            if not isinstance(value, dict):
                raise TypeError(path)
            leaves.update(flatten(table, value, f"{path}."))
        elif path in table.fields:
            leaves[path] = value
        else:
            raise KeyError(raw_path)
    return leaves


def nest(leaves: Mapping[str, Any]) -> dict[str, Any]:
    """{leaf path: value} -> nested dict."""
    root: dict[str, Any] = {}
    for path, value in leaves.items():
        *parents, last = path.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return root
