"""Write node/fields.json: the field table of loomctl.consumer_config as the Node package reads it.

    python scripts/node-fields.py            # rewrite node/fields.json
    python scripts/node-fields.py --check    # exit 1 when node/fields.json is stale

Each field's KafkaJS placement is not copied from FIELDS by hand: it is found by asking
`kafkajs_options()` (what `loomctl config show --client kafkajs` prints) which option changes when
the field changes, and with what value, so the Node package and the CLI cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loomctl.consumer_config import DEFAULTS, FIELDS, GROUP_PROTOCOLS, RULES, Field, kafkajs_options, reload_class
from loomctl.validation import SERVICE_NAME

TARGET = ROOT / "node" / "fields.json"


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, dict):
        leaves: dict[tuple[str, ...], Any] = {}
        for key, value in tree.items():
            leaves.update(_leaves(value, (*path, key)))
        return leaves
    return {path: tree}


def _changed(settings: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    base, other = _leaves(kafkajs_options(DEFAULTS)), _leaves(kafkajs_options(settings))
    if base.keys() != other.keys():
        raise SystemExit(f"kafkajs_options() changes its keys with {settings}: cannot describe it")
    return {path: other[path] for path in base if base[path] != other[path]}


def _samples(field: Field) -> list[Any]:
    if field.choices:
        return list(field.choices)
    if field.kind is bool:
        return [True, False]
    low, high = field.minimum, field.maximum
    return sorted({low, high, (low + high) // 2} - {field.default})


def kafkajs_mapping(field: Field) -> dict[str, Any] | None:
    """Where the field lands in kafkajs_options(): a path and, for bool and choice fields, each value's option."""
    paths: set[tuple[str, ...]] = set()
    values: dict[str, Any] = {}
    for sample in _samples(field):
        changed = _changed({**DEFAULTS, field.name: sample})
        paths.update(changed)
        if len(paths) > 1:
            raise SystemExit(f"{field.name} moves several KafkaJS options {sorted(paths)}: teach {__file__} this shape")
        if field.kind is int and changed and next(iter(changed.values())) != sample:
            raise SystemExit(f"{field.name}={sample} becomes {changed}: only integers passed as they are are described")
        if field.kind is not int:
            values[sample if isinstance(sample, str) else json.dumps(sample)] = changed[next(iter(paths))] if changed else None
    if not paths:
        return None
    (path,) = paths
    mapping: dict[str, Any] = {"path": list(path)}
    if field.kind is not int:
        default_value = _leaves(kafkajs_options(DEFAULTS))[path]
        mapping["values"] = {key: default_value if value is None else value for key, value in values.items()}
    return mapping


def document() -> dict[str, Any]:
    return {
        "generated_by": "scripts/node-fields.py from loomctl/consumer_config.py; do not edit",
        "service_name_pattern": SERVICE_NAME.pattern,
        "fields": [
            {
                "name": f.name,
                "kind": f.kind.__name__,
                "default": f.default,
                "minimum": f.minimum,
                "maximum": f.maximum,
                "choices": list(f.choices) if f.choices else None,
                "unit": f.unit,
                "description": f.description,
                "java": f.java,
                "librdkafka": f.librdkafka,
                "kafkajs": kafkajs_mapping(f),
                "reload": {p: reload_class(f.name, {**DEFAULTS, "group_protocol": p}) for p in GROUP_PROTOCOLS},
            }
            for f in FIELDS
        ],
        "rules": [{"name": r.name, "fields": list(r.fields), "sql": r.sql, "reason": r.reason} for r in RULES],
    }


def render() -> str:
    return json.dumps(document(), indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when node/fields.json is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/node-fields.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
