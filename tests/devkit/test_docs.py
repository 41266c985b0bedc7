"""devkit.docs: worker READMEs' input tables are generated from the input models and kept current."""

from __future__ import annotations

import json

from devkit import docs


def test_every_worker_readme_input_table_is_current():
    stale = [str(path) for path, current, fresh in map(docs.rendered_readme, docs.INPUT_MODELS) if current != fresh]
    assert not stale, f"run `make docs`: {stale}"


def test_every_worker_with_an_endpoint_has_documented_inputs(repo):
    workers = {p.parent.name for p in (repo / "workers").glob("*/endpoint.toml")}
    assert workers <= set(docs.INPUT_MODELS)


def test_schema_command_prints_the_json_schema(capsys):
    assert docs.main(["schema", "progress-demo"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False and "steps" in schema["properties"]
