"""Checks YAML documents (as JSON) against scorch's JSON Schemas with jsonschema.

    check_schemas.py SCHEMA_DIR CASES_JSON

CASES_JSON: [{"kind", "file", "doc", "valid"}]; a case that should be valid must
validate, one that should not must fail.
"""

import json
import os
import sys

import jsonschema

schema_dir, cases_file = sys.argv[1:3]
schemas = {}
for name in os.listdir(schema_dir):
    with open(os.path.join(schema_dir, name)) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    schemas[name.removesuffix(".json")] = jsonschema.Draft7Validator(schema)

failures = []
for case in json.load(open(cases_file)):
    errors = sorted(schemas[case["kind"]].iter_errors(case["doc"]), key=str)
    if case["valid"] and errors:
        failures.append(f"{case['file']}: {errors[0].message} at {list(errors[0].absolute_path)}")
    elif not case["valid"] and not errors:
        failures.append(f"{case['file']}: expected to fail the {case['kind']} schema")
    else:
        print(f"{'ok  ' if case['valid'] else 'bad '} {case['kind']:<13} {case['file']}"
              + ("" if case["valid"] else f": {errors[0].message}"))
if failures:
    sys.exit("\n".join(failures))
