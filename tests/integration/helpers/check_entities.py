#!/usr/bin/env python3
"""Checks what `ndtpipe harmonize` published on ndt.sdm.entities.

usage: check_entities.py SDM_SCHEMAS_DIR FRAGMENTS_FILE [TYPE=MIN ...]

FRAGMENTS_FILE holds one Kafka message value per line (kcat -f '%s\\n').
Every fragment must validate against its type's normalized JSON Schema
(draft 2020-12, Debian's python3-jsonschema: a validator independent of
ndtpipe's C), be keyed like NGSI-LD (id, type, @context), and every
Relationship object must be the id of an entity that was published too.
TYPE=MIN asks for at least MIN distinct entities of TYPE.  Prints one line
per problem and exits 1 if there is any.
"""
import json
import os
import sys

from jsonschema import Draft202012Validator, FormatChecker


def main():
    schemas_dir, path = sys.argv[1], sys.argv[2]
    wants = dict(a.split("=") for a in sys.argv[3:])
    validators = {}
    problems = []
    ids = {}
    objects = []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if not lines:
        print("no fragments published")
        return 1
    for n, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except ValueError as e:
            problems.append(f"fragment {n}: not JSON: {e}")
            continue
        t = doc.get("type")
        schema_path = os.path.join(schemas_dir, "ngsi-ld", str(t), "schema.normalized.json")
        if t not in validators:
            if not os.path.exists(schema_path):
                problems.append(f"fragment {n}: unknown type {t!r}")
                continue
            with open(schema_path, encoding="utf-8") as s:
                validators[t] = Draft202012Validator(json.load(s), format_checker=FormatChecker())
        for err in validators[t].iter_errors(doc):
            path_ = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"fragment {n} ({doc.get('id')}): {path_}: {err.message}")
        if "@context" not in doc:
            problems.append(f"fragment {n}: no @context")
        ids.setdefault(t, set()).add(doc.get("id"))
        for name, attr in doc.items():
            if isinstance(attr, dict) and attr.get("type") == "Relationship":
                obj = attr.get("object")
                for o in obj if isinstance(obj, list) else [obj]:
                    objects.append((doc.get("id"), name, o))
    every = set().union(*ids.values())
    for subject, name, o in objects:
        if o not in every:
            problems.append(f"{subject}: {name} points to {o}, never published")
    for t, least in wants.items():
        got = len(ids.get(t, ()))
        if got < int(least):
            problems.append(f"{got} entities of type {t} published, expected at least {least}")
    for p in problems[:50]:
        print(p)
    print(f"{len(lines)} fragments, {len(every)} entities, {len(objects)} relationships checked, "
          f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
