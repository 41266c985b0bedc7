"""worker.toml: each worker's one declaration; what it refuses, and that every worker folder has a valid one."""

from __future__ import annotations

import pytest

from devkit import manifest

VALID = '[worker]\npackage = "worker_my_asr"\ninput = "worker_my_asr.worker:Input"\nci_base = "ci-local/python:3.11"\n'


def _write(tmp_path, text: str, name: str = "my-asr"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "worker.toml").write_text(text)
    return tmp_path


def test_every_worker_folder_loads_with_its_package_importable_by_its_prefixed_name(repo):
    for declared in manifest.all_manifests():
        assert declared.package == "worker_" + declared.name.replace("-", "_")
        assert (declared.folder / declared.package / "__main__.py").is_file()


def test_a_minimal_declaration_has_no_fixture_and_no_bench_job(tmp_path):
    declared = manifest.load("my-asr", _write(tmp_path, VALID))
    assert (declared.fixture, declared.first_job) == (None, None)
    assert declared.input_model_path() == ("worker_my_asr.worker", "Input")


@pytest.mark.parametrize(("text", "why"), [
    (VALID.replace("worker_my_asr\"", "whisper\""), "package must be 'worker_my_asr'"),
    (VALID + "gpu = 1\n", r"\[worker\] has unknown keys \['gpu'\]"),
    (VALID + "[fixture]\nbuilder = 'm'\nfolder = 'f'\nsize = 1\n", r"\[fixture\] has unknown keys"),
    (VALID.replace('ci_base = "ci-local/python:3.11"\n', ""), r"needs \['ci_base'\]"),
    (VALID.replace("worker_my_asr.worker:Input", "other.worker:Input"), "input must be 'module:attribute'"),
    ("[worker\n", "worker.toml"),
])
def test_a_bad_declaration_is_refused_naming_the_file_and_the_reason(tmp_path, text, why):
    with pytest.raises(manifest.ManifestError, match=why):
        manifest.load("my-asr", _write(tmp_path, text))


def test_a_folder_name_that_cannot_be_an_image_name_is_refused(tmp_path):
    with pytest.raises(manifest.ManifestError, match="lower case"):
        manifest.load("My_Asr", _write(tmp_path, VALID, name="My_Asr"))


def test_an_engine_baseline_is_read_from_bench_and_absent_by_default(tmp_path):
    text = VALID + '[bench]\nengine_baseline = "devkit.bench.raw:cold_start"\n'
    assert manifest.load("my-asr", _write(tmp_path, text)).engine_baseline == "devkit.bench.raw:cold_start"
    assert manifest.load("other", _write(tmp_path, VALID.replace("my_asr", "other"), "other")).engine_baseline is None


def test_readme_blocks_are_declared_by_name_with_the_function_that_renders_them(tmp_path):
    text = VALID + '[docs.blocks]\nsettings-table = "worker_my_asr.settings:reference"\n'
    declared = manifest.load("my-asr", _write(tmp_path, text))
    assert declared.doc_blocks == {"settings-table": "worker_my_asr.settings:reference"}
    assert manifest.load("other", _write(tmp_path, VALID.replace("my_asr", "other"), "other")).doc_blocks == {}


def test_a_readme_block_without_its_module_and_function_is_refused(tmp_path):
    with pytest.raises(manifest.ManifestError, match=r"\[docs\] blocks must map .* got \['settings-table'\]"):
        manifest.load("my-asr", _write(tmp_path, VALID + '[docs.blocks]\nsettings-table = "reference"\n'))
VARIANT = '[variants.embedding]\nbuilder = "m"\nfolder = "f"\nenv = { A = "1" }\ninput = "worker_my_asr.x:In"\n'


def test_a_variant_is_another_endpoint_id_of_the_same_worker_on_another_fixture(tmp_path):
    workers = _write(tmp_path, VALID + VARIANT)
    declared = manifest.load("my-asr", workers)
    variant = declared.variants["embedding"]
    assert variant.fixture == manifest.Fixture("m", "f", {"A": "1"})
    assert declared.input_model_path("embedding") == ("worker_my_asr.x", "In")
    assert manifest.endpoint_ids(workers) == ["my-asr", "my-asr-embedding"]
    assert manifest.endpoint_of("my-asr-embedding", workers) == (declared, "embedding")
    assert manifest.endpoint_of("my-asr", workers) == (declared, None)


@pytest.mark.parametrize(("text", "why"), [
    (VALID + VARIANT + "size = 1\n", r"\[variants.embedding\] has unknown keys \['size'\]"),
    (VALID + '[variants.embedding]\nbuilder = "m"\n', r"needs \['folder'\]"),
    (VALID + VARIANT.replace("worker_my_asr.x:In", "other:In"), "input must be 'module:attribute'"),
    (VALID + '[variants.Big]\nbuilder = "m"\nfolder = "f"\n', "lower case"),
])
def test_a_bad_variant_is_refused_naming_the_file_and_the_reason(tmp_path, text, why):
    with pytest.raises(manifest.ManifestError, match=why):
        manifest.load("my-asr", _write(tmp_path, text))


def test_a_variant_id_that_is_another_workers_name_is_refused(tmp_path):
    workers = _write(tmp_path, VALID.replace("my_asr", "my") + '[variants.asr]\nbuilder = "m"\nfolder = "f"\n',
                     name="my")
    _write(workers, VALID)
    with pytest.raises(manifest.ManifestError, match="declared twice"):
        manifest.endpoint_ids(workers)


def test_an_unknown_endpoint_id_is_refused_listing_the_known_ones(tmp_path):
    with pytest.raises(manifest.ManifestError, match="known: my-asr"):
        manifest.endpoint_of("nope", _write(tmp_path, VALID))
