"""What the page and /docs read: each worker's input schema from its input model, its example input."""

from __future__ import annotations

import json

from devkit import docs, manifest
from devkit.endpoint.page import PAGE_DIR, component_schemas, example_input, input_schema
from devkit.endpoint_config import WORKERS_DIR
from shared.validation import json_schema


def test_every_worker_with_an_input_model_has_its_schema_and_its_test_input_as_example():
    for worker in manifest.worker_names():
        assert input_schema(worker) == json_schema(docs.input_model(worker))
        expected = json.loads((WORKERS_DIR / worker / "test_input.json").read_text())["input"]
        assert example_input(worker) == expected


def test_a_worker_without_an_input_model_has_no_schema_and_no_example():
    assert input_schema("records-runs") is None
    assert example_input("records-runs") is None


def test_nested_models_become_components_with_their_references_rewritten():
    schema = {"properties": {"m": {"$ref": "#/$defs/Msg"}}, "$defs": {"Msg": {"type": "object"}}}
    assert component_schemas("w", schema) == {
        "w.input": {"properties": {"m": {"$ref": "#/components/schemas/w.Msg"}}},
        "w.Msg": {"type": "object"},
    }


def test_the_pages_files_refer_only_to_the_endpoint_itself():
    for path in PAGE_DIR.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


def test_a_worker_toml_variant_has_its_own_input_schema_and_example():
    declared = manifest.load("llm-vllm")
    variant = declared.variants["embedding"]
    assert input_schema("llm-vllm-embedding") == json_schema(docs.input_model("llm-vllm", "embedding"))
    assert input_schema("llm-vllm-embedding") != input_schema("llm-vllm")
    assert example_input("llm-vllm-embedding") == variant.example
