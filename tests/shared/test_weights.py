"""shared.weights: which files get baked, from a local folder or the Hub, and where the token goes."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from shared import weights
from shared.weights import WeightsError, bake, extra_models, main, read_token, select_files, variant_of

TOKEN = "hf_canary_0123456789abcdef"  # a made-up token; what matters is that it never shows up


def _reader(files: dict[str, dict]):
    return lambda name: files[name]


def test_variant_of_reads_plain_variant_and_sharded_names():
    assert variant_of("model.safetensors") is None
    assert variant_of("unet/diffusion_pytorch_model.fp16.safetensors") == "fp16"
    assert variant_of("model.fp16-00001-of-00002.safetensors") == "fp16"
    assert variant_of("model-00001-of-00002.safetensors") is None


def test_llm_repo_keeps_safetensors_shards_configs_tokenizer_and_model_card_only():
    names = [
        ".gitattributes", "README.md", "config.json", "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", "tokenizer.model", "chat_template.jinja", "special_tokens_map.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
        "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
        "consolidated.safetensors", "original/params.json", "original/consolidated.00.pth",
    ]
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    selected = select_files(names, _reader({"model.safetensors.index.json": index}))
    assert selected == sorted([
        "README.md", "chat_template.jinja", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "original/params.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
    ])


def test_diffusers_pipeline_keeps_its_components_the_requested_variant_and_its_licence():
    names = [
        "model_index.json", "sd_xl_base_1.0.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
        "vae_1_0/config.json", "vae_1_0/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors",
        "text_encoder/model.onnx", "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json",
        "LICENSE.md", "README.md", "01.png",
    ]
    index = {"_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.42.1",
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"], "image_encoder": [None, None]}
    selected = select_files(names, _reader({"model_index.json": index}), variant="fp16")
    assert selected == sorted([
        "LICENSE.md", "README.md", "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors", "tokenizer/merges.txt", "tokenizer/vocab.json", "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ])
    plain = select_files(names, _reader({"model_index.json": index}))
    assert "unet/diffusion_pytorch_model.safetensors" in plain
    assert not [name for name in plain if variant_of(name)]


def test_licence_use_policy_and_notice_files_at_the_top_are_baked_whatever_their_format():
    names = ["LICENSE", "LICENSE.txt", "USE_POLICY.md", "NOTICE", "README.md", "config.json", "model.safetensors",
             "docs/README.md", "original/LICENSE", "assets/banner.png"]
    selected = select_files(names, _reader({}))
    assert selected == ["LICENSE", "LICENSE.txt", "NOTICE", "README.md", "USE_POLICY.md", "config.json",
                        "model.safetensors"]


def test_single_file_copies_beside_the_loader_weights_are_left_out():
    # madebyollin/sdxl-vae-fp16-fix: diffusers' file plus the same weights twice as single files.
    names = ["config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
             "sdxl_vae.safetensors", "sdxl.vae.safetensors", "README.md"]
    assert select_files(names, _reader({})) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]


def test_folder_with_only_variant_weights_needs_the_variant_named():
    with pytest.raises(WeightsError, match=r"unet/ has only variant weights \['fp16'\]"):
        select_files(["unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors"], _reader({}))


def test_model_without_safetensors_is_refused():
    with pytest.raises(WeightsError, match="only safetensors are baked"):
        select_files(["config.json", "pytorch_model.bin"], _reader({}))


def test_local_folder_bakes_a_model_that_loads_with_the_production_call(tiny_llm_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = shutil.copytree(tiny_llm_dir, tmp_path / "source")  # the session fixture stays untouched
    (source / "pytorch_model.bin").write_bytes(b"pickled weights must not be baked")
    (source / ".complete").touch()
    out = tmp_path / "model"
    selected = bake("org/tiny-llama", "0" * 40, out, local=source)
    baked = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert baked == selected
    assert "model.safetensors" in baked and "pytorch_model.bin" not in baked
    assert not [name for name in baked if name.startswith(".")]
    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)


def test_local_sdxl_fixture_keeps_every_fp16_component(tiny_sdxl_dir, tmp_path):
    out = tmp_path / "model"
    selected = bake("org/tiny-sdxl", "0" * 40, out, local=tiny_sdxl_dir, variant="fp16")
    components = {key for key, value in json.loads((tiny_sdxl_dir / "model_index.json").read_text()).items()
                  if isinstance(value, list) and value[0]}
    weighted = {Path(name).parts[0] for name in selected if name.endswith(".safetensors")}
    assert weighted == components - {"tokenizer", "tokenizer_2", "scheduler"}
    assert all(variant_of(name) == "fp16" for name in selected if name.endswith(".safetensors"))


def test_local_folder_ignores_a_given_token_and_never_logs_it(tiny_llm_dir, tmp_path, caplog):
    secret = tmp_path / "hf_token"
    secret.write_text(TOKEN)
    with caplog.at_level(logging.DEBUG):
        bake("org/tiny-llama", "0" * 40, tmp_path / "model", local=tiny_llm_dir, token_file=secret)
    assert "a Hub token was given" in caplog.text
    assert TOKEN not in caplog.text


def test_token_is_read_from_the_secret_file_stripped(tmp_path):
    secret = tmp_path / "hf_token"
    secret.write_text(f"  {TOKEN}\n")
    assert read_token(secret) == TOKEN
    assert read_token(tmp_path / "absent") is None
    (tmp_path / "empty").write_text("\n")
    assert read_token(tmp_path / "empty") is None


class FakeHub:
    """Records how huggingface_hub is called and writes the files a real download would."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.tokens: list = []

    def install(self, monkeypatch):
        import huggingface_hub

        hub = self

        class Api:
            def list_repo_tree(self, repo_id, *, revision=None, recursive=False, token=None):
                assert recursive, "a listing of the top folder only would miss every component"
                hub.tokens.append(token)
                return [hub.entry(name) for name in hub.files]

        def hf_hub_download(repo_id, filename, *, revision=None, local_dir=None, token=None):
            hub.tokens.append(token)
            return str(hub._write(Path(local_dir), filename))

        def snapshot_download(repo_id, *, revision=None, local_dir=None, allow_patterns=None, token=None):
            hub.tokens.append(token)
            for name in allow_patterns:
                hub._write(Path(local_dir), name)
            hub._write(Path(local_dir), ".cache/huggingface/download/model.safetensors.metadata")
            return local_dir

        monkeypatch.setattr(huggingface_hub, "HfApi", Api)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)

    def entry(self, name: str):
        """A RepoFile as the Hub's tree API gives it: large files in LFS (sha256), the others by git blob id."""
        from huggingface_hub.hf_api import RepoFile

        data = self.files[name]
        lfs = ({"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130}
               if name.endswith(".safetensors") else None)
        return RepoFile(path=name, size=len(data), oid=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                        lfs=lfs)

    def _write(self, root: Path, name: str) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.files.get(name, b"{}"))
        return path


@pytest.fixture
def hub(monkeypatch):
    index = json.dumps({"weight_map": {"w": "model-00001-of-00001.safetensors"}}).encode()
    fake = FakeHub({
        "config.json": b"{}", "tokenizer.json": b"{}", "model-00001-of-00001.safetensors": b"\0" * 8,
        "model.safetensors.index.json": index, "pytorch_model.bin.index.json": b"{}", "pytorch_model.bin": b"x",
    })
    fake.install(monkeypatch)
    return fake


def test_hub_download_passes_the_secret_token_and_logs_it_nowhere(hub, tmp_path, caplog, capsys):
    secret = tmp_path / "hf_token"
    secret.write_text(TOKEN + "\n")
    out = tmp_path / "model"
    with caplog.at_level(logging.DEBUG):
        selected = bake("org/gated", "a" * 40, out, local=tmp_path / "empty-context", token_file=secret)
    assert hub.tokens and all(token == TOKEN for token in hub.tokens)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == selected
    assert "pytorch_model.bin" not in selected and not (out / ".cache").exists()
    captured = capsys.readouterr()
    assert "with a token" in caplog.text
    assert TOKEN not in caplog.text + captured.out + captured.err


def test_hub_download_without_a_token_is_anonymous_not_ambient(hub, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", "ambient-token-must-not-be-used")
    with caplog.at_level(logging.INFO):
        bake("org/public", "b" * 40, tmp_path / "model", token_file=tmp_path / "no-secret-mounted")
    assert hub.tokens and all(token is False for token in hub.tokens)
    assert "anonymously" in caplog.text


def test_cli_refuses_a_missing_model_id_with_a_clear_message(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["--id", "", "--revision", "x", "--out", str(tmp_path / "m")]) == 2
    assert "model id and revision are required" in caplog.text


def test_module_runs_standalone_with_stdlib_and_huggingface_hub_only():
    source = Path(weights.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from ")) and not line.startswith("from __future__")}
    assert imports <= {"argparse", "hashlib", "json", "logging", "re", "shutil", "sys", "collections", "dataclasses",
                       "pathlib"}


def _sdxl_extras(root: Path) -> Path:
    """The tiny stand-ins of sdxl's extra models, a folder per model.toml table, as CI lays them out."""
    from devkit.fixtures.sdxl import EXTRA_BUILDERS

    for name, build in EXTRA_BUILDERS.items():
        build(root / name)
    return root


SDXL_EXTRAS = json.dumps({"vae": {"id": "org/vae", "revision": "1" * 40},
                          "refiner": {"id": "org/refiner", "revision": "2" * 40, "variant": "fp16",
                                      "from_base": ["vae"], "from_base_if_same": ["text_encoder_2", "tokenizer_2"]}})


def test_cli_bakes_every_model_of_model_toml_into_a_folder_each_loadable_by_the_worker(tiny_sdxl_dir, tmp_path):
    from diffusers import AutoencoderKL

    from worker_sdxl import pipeline

    extras = _sdxl_extras(tmp_path / "extras")
    out = tmp_path / "weights"
    assert main(["--id", "org/sdxl", "--revision", "0" * 40, "--variant", "fp16", "--extras", SDXL_EXTRAS,
                 "--local", str(tiny_sdxl_dir), "--local-extras", str(extras), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model", "refiner", "vae"]
    assert (out / "model" / "README.md").is_file() and (out / "vae" / "README.md").is_file()
    assert sorted(p.name for p in (out / "refiner").iterdir()) == ["README.md", "model_index.json", "scheduler", "unet"]
    assert AutoencoderKL.from_pretrained(out / "vae").config.force_upcast is False
    loaded = pipeline.load(out / "model", vae_path=out / "vae", refiner_path=out / "refiner")
    assert loaded.refiner.vae is loaded.text2img.vae
    assert loaded.refiner.text_encoder_2 is loaded.text2img.text_encoder_2


def test_refiner_components_are_baked_only_where_they_differ_from_the_base(tiny_sdxl_dir, tmp_path):
    extras = _sdxl_extras(tmp_path / "extras")
    # As on the Hub: the refiner repo stores its own copies of the shared components.
    for component in ("text_encoder_2", "tokenizer_2", "vae"):
        shutil.copytree(tiny_sdxl_dir / component, extras / "refiner" / component)
    weights_file = next((extras / "refiner" / "text_encoder_2").glob("*.safetensors"))
    weights_file.write_bytes(weights_file.read_bytes()[:-1] + b"\x01")  # one byte off: another encoder
    baked = weights.bake_all([weights.Model("model", "org/sdxl", "0" * 40, "fp16"),
                              *extra_models(SDXL_EXTRAS)], tmp_path / "weights", local=tiny_sdxl_dir,
                             local_extras=extras)
    folders = {Path(name).parts[0] for name in baked["refiner"]}
    assert "text_encoder_2" in folders, "a different encoder must be baked"
    assert "tokenizer_2" not in folders, "the same tokenizer as the base's must not be stored twice"
    assert "vae" not in folders, "from_base: the worker always loads the base's VAE"
    from worker_sdxl import pipeline

    loaded = pipeline.load(tmp_path / "weights" / "model", refiner_path=tmp_path / "weights" / "refiner")
    assert loaded.refiner.text_encoder_2 is not loaded.text2img.text_encoder_2, "its own encoder, as baked"
    assert loaded.refiner.tokenizer_2 is loaded.text2img.tokenizer_2 and loaded.refiner.vae is loaded.text2img.vae


def test_hub_refiner_sharing_the_base_encoder_is_compared_without_downloading_it(monkeypatch, tmp_path):
    encoder = b"\0" * 64
    base = FakeHub({"model_index.json": json.dumps({"text_encoder_2": ["t", "C"], "unet": ["d", "U"]}).encode(),
                    "text_encoder_2/config.json": b'{"a": 1}', "text_encoder_2/model.safetensors": encoder,
                    "unet/config.json": b"{}", "unet/diffusion_pytorch_model.safetensors": b"\1" * 8})
    base.install(monkeypatch)
    bake("org/base", "a" * 40, tmp_path / "model")
    refiner = FakeHub({**base.files, "unet/diffusion_pytorch_model.safetensors": b"\2" * 8})
    refiner.install(monkeypatch)
    selected = bake("org/refiner", "b" * 40, tmp_path / "refiner", base=tmp_path / "model",
                    from_base_if_same=["text_encoder_2", "unet"])
    assert selected == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    assert not (tmp_path / "refiner" / "text_encoder_2").exists()


def test_extra_model_names_are_folder_names_and_not_the_main_one():
    assert [m.name for m in extra_models('{"vae": {"id": "a/b", "revision": "c"}}')] == ["vae"]
    for bad in ('{"model": {}}', '{"../x": {}}', '{"Vae": {}}'):
        with pytest.raises(WeightsError, match="extra model name"):
            extra_models(bad)
    with pytest.raises(WeightsError, match="not JSON"):
        extra_models("{vae")


# --- LoRA adapters ---------------------------------------------------------------------------------


def test_adapters_bake_beside_the_model_in_a_folder_each_named_as_served(tiny_llm_dir, tmp_path):
    from devkit.fixtures.llm import build_adapters

    extras = tmp_path / "extras"
    build_adapters(extras / weights.ADAPTERS)
    (extras / "adapters" / "tiny-lora" / "adapter_model.bin").write_bytes(b"pickle")  # never baked
    out = tmp_path / "weights"
    adapters = json.dumps({"tiny-lora": {"id": "org/lora", "revision": "1" * 40},
                           "tiny-lora-alt": {"id": "org/lora-alt", "revision": "2" * 40}})
    assert main(["--id", "org/llm", "--revision", "0" * 40, "--adapters", adapters, "--local", str(tiny_llm_dir),
                 "--local-extras", str(extras), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["adapters", "model"]
    for name in ("tiny-lora", "tiny-lora-alt"):
        assert sorted(p.name for p in (out / "adapters" / name).iterdir()) == [
            "README.md", "adapter_config.json", "adapter_model.safetensors"]


def test_an_adapter_without_peft_config_or_safetensors_is_refused(tmp_path):
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    [adapter] = weights.adapter_models('{"my-lora": {"id": "org/lora", "revision": "1"}}')
    with pytest.raises(WeightsError, match=r"has no adapter_config\.json"):
        bake(adapter.id, adapter.revision, tmp_path / "out", local=folder, required=adapter.required)
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(WeightsError, match="only safetensors"):
        bake(adapter.id, adapter.revision, tmp_path / "out", local=folder, required=adapter.required)


def test_adapter_names_are_served_names_and_extra_models_cannot_take_the_adapters_folder():
    assert [m.name for m in weights.adapter_models('{"Qwen-sql_lora.v2": {"id": "a/b", "revision": "c"}}')] == [
        "adapters/Qwen-sql_lora.v2"]
    for bad in ('{"../x": {}}', '{"a/b": {}}', '{"-x": {}}', '{"": {}}'):
        with pytest.raises(WeightsError, match="adapter name"):
            weights.adapter_models(bad)
    with pytest.raises(WeightsError, match="extra model name"):
        extra_models('{"adapters": {"id": "a/b", "revision": "c"}}')
