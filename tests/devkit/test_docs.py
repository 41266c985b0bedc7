"""devkit.docs: worker READMEs' input tables are generated from the input models and kept current."""

from __future__ import annotations

import json

from devkit import docs, manifest
from shared.errors import ERROR_TYPES


def test_every_worker_readme_input_table_is_current():
    rendered = map(docs.rendered_readme, manifest.worker_names())
    stale = [str(path) for path, current, fresh in rendered if current != fresh]
    assert not stale, f"run `make docs`: {stale}"


def test_every_worker_with_an_endpoint_has_documented_inputs(repo):
    workers = {p.parent.name for p in (repo / "workers").glob("*/endpoint.toml")}
    assert workers <= set(manifest.worker_names())


def test_schema_command_prints_the_json_schema(capsys):
    assert docs.main(["schema", "progress-demo"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False and "steps" in schema["properties"]


def test_the_readme_error_table_is_current():
    path, current, fresh = docs.rendered_error_table()
    assert current == fresh, f"run `make docs`: {path}"


def test_the_error_table_has_one_row_per_error_type_with_its_retryability():
    table = docs.error_table()
    for kind in ERROR_TYPES:
        row = next(line for line in table.splitlines() if f"`{kind.__name__}`" in line)
        assert f"`{kind.code}`" in row and f"| {'yes' if kind.retryable else 'no'} | {kind.http_status} |" in row
    assert "| `INTERNAL` | `WorkerError` |" in table and "| no | 500 |" in table


def test_check_fails_on_a_stale_error_table(monkeypatch, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{docs.ERRORS_START}\n| stale |\n{docs.ERRORS_END}\n")
    monkeypatch.setattr(docs, "rendered_error_table",
                        lambda: docs._rendered(readme, docs.ERRORS_START, docs.ERRORS_END, docs.error_table()))
    assert docs.main(["check"]) == 1
    assert docs.main(["write"]) == 0 and docs.main(["check"]) == 0
    assert "`UPLOAD_FAILED`" in readme.read_text()


def test_every_generated_worker_block_is_current():
    rendered = map(docs.rendered_blocks, docs.workers_with_blocks())
    stale = [str(path) for path, current, fresh in rendered if current != fresh]
    assert not stale, f"run `make docs`: {stale}"


def test_both_llm_readmes_document_worker_vllms_form_with_its_sampling_params():
    for worker in ("llm-hf", "llm-vllm"):
        _, text, _ = docs.rendered_blocks(worker)
        block = text.split("<!-- worker-vllm-input:start")[1].split("<!-- worker-vllm-input:end")[0]
        assert "| `sampling_params` |" in block and "| `structured_outputs` |" in block and "| `choice` |" in block
