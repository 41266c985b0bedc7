"""llm-vllm on an embedding model (real CPU vLLM engine, tiny embedding fixture) through the job loop's handler:
vectors as vLLM's offline ``LLM.embed`` computes them, OpenAI's response shape, limits, and each kind of model
refusing the other's requests."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given

from devkit.fixtures.embedding import DIMENSIONS, MATRYOSHKA_DIMENSIONS
from devkit.fixtures.llm import CONTEXT
from shared.validation import json_schema
from worker_llm_vllm.embeddings import MAX_INPUTS, EmbeddingInput

pytestmark = pytest.mark.vllm

MODEL = "tiny-embedding"
EMBEDDINGS = "/v1/embeddings"
#: The session's engine settings (float32: vectors comparable to the offline engine's), on the embedding model.
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "ENFORCE_EAGER": "true", "DTYPE": "float32",
              "SERVED_MODEL_NAME": MODEL}
TEXTS = ["Hello, world!", "naïve café 🙂", "日本語のテキスト"]

#: vLLM's offline API on the same folder and settings, in a process of its own (one engine per process).
OFFLINE = """
import json, sys
from vllm import LLM, PoolingParams
if __name__ == "__main__":
    folder, texts, dimensions = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    llm = LLM(model=folder, enforce_eager=True, dtype="float32", max_model_len=512)
    full = [o.outputs.embedding for o in llm.embed(texts)]
    short = [o.outputs.embedding for o in llm.embed(texts, pooling_params=PoolingParams(dimensions=dimensions))]
    print("VECTORS" + json.dumps({"full": full, "short": short}), flush=True)
    # Shut the engine core down before the interpreter exits: left to the exit, its threads were sometimes
    # still joinable and the process aborted ("terminate called without an active exception").
    llm.llm_engine.engine_core.shutdown()
"""


@pytest.fixture(scope="module")
def embedding_worker(tiny_embedding_dir, start_worker):
    with start_worker(tiny_embedding_dir, ENGINE_ENV) as worker:
        yield worker


@pytest.fixture(scope="module")
def jobs(embedding_worker, jobs_of):
    return jobs_of(embedding_worker)


@pytest.fixture(scope="module")
def embed(jobs):
    """embed(job_input) -> the one chunk (the whole response) of a job that must succeed."""

    def embedded(job_input):
        [response] = jobs[0](job_input)
        assert "error" not in response, response
        return response

    return embedded


@pytest.fixture(scope="module")
def refuse(jobs):
    return jobs[1]


@pytest.fixture(scope="module")
def offline_vectors(tiny_embedding_dir):
    command = [sys.executable, "-c", OFFLINE, str(tiny_embedding_dir), json.dumps(TEXTS),
               str(MATRYOSHKA_DIMENSIONS[0])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("VECTORS")]
    return json.loads(line.removeprefix("VECTORS"))


def openai(body):
    return {"openai_route": EMBEDDINGS, "openai_input": body}


def vectors(response):
    assert [item["index"] for item in response["data"]] == list(range(len(response["data"])))
    return np.array([item["embedding"] for item in response["data"]])


def test_vectors_equal_vllms_offline_embed_for_the_same_inputs(embed, offline_vectors):
    native = vectors(embed({"input": TEXTS}))
    routed = vectors(embed(openai({"model": MODEL, "input": TEXTS})))
    np.testing.assert_allclose(native, np.array(offline_vectors["full"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(routed, native, rtol=1e-5, atol=1e-6)


def test_matryoshka_dimensions_equal_vllms_offline_short_vectors(embed, offline_vectors):
    short = vectors(embed({"input": TEXTS, "dimensions": MATRYOSHKA_DIMENSIONS[0]}))
    assert short.shape == (len(TEXTS), MATRYOSHKA_DIMENSIONS[0])
    np.testing.assert_allclose(short, np.array(offline_vectors["short"]), rtol=1e-4, atol=1e-5)


def test_the_response_has_openais_embedding_list_shape_with_usage(embed, tokenizer_of_embedding):
    response = embed(openai({"model": MODEL, "input": "Hello, world!"}))
    assert response["object"] == "list" and response["model"] == MODEL
    [item] = response["data"]
    assert item["object"] == "embedding" and item["index"] == 0 and len(item["embedding"]) == DIMENSIONS
    assert all(isinstance(x, float) for x in item["embedding"])
    tokens = len(tokenizer_of_embedding.encode("Hello, world!"))
    assert response["usage"]["prompt_tokens"] == response["usage"]["total_tokens"] == tokens


def test_a_single_text_a_list_token_ids_and_lists_of_token_ids_are_each_one_vector_per_input(
        embed, tokenizer_of_embedding):
    ids = tokenizer_of_embedding.encode("Hello, world!")
    one = vectors(embed({"input": "Hello, world!"}))
    assert one.shape == (1, DIMENSIONS)
    np.testing.assert_allclose(vectors(embed({"input": ids})), one, rtol=1e-5, atol=1e-6)
    assert vectors(embed({"input": [ids, ids[:3]]})).shape == (2, DIMENSIONS)


def test_base64_encoding_is_the_float32_bytes_of_the_float_vector(embed):
    floats = vectors(embed({"input": TEXTS[0]}))[0]
    [item] = embed({"input": TEXTS[0], "encoding_format": "base64"})["data"]
    decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats, rtol=1e-6, atol=1e-7)


def test_more_inputs_than_the_limit_is_bad_input_naming_the_count(refuse):
    envelope = refuse({"input": ["a"] * (MAX_INPUTS + 1)})
    assert envelope["code"] == "BAD_INPUT"
    [problem] = envelope["problems"]
    assert problem["field"] == "input" and f"at most {MAX_INPUTS}" in problem["reason"]
    [problem] = refuse(openai({"input": ["a"] * (MAX_INPUTS + 1)}))["problems"]
    assert problem["field"] == "openai_input.input"


def test_an_input_over_the_models_context_is_bad_input_on_input_with_its_token_count(refuse):
    for job, field in (({"input": ["short", "word " * CONTEXT]}, "input"),
                       (openai({"input": [list(range(10)) * CONTEXT]}), "openai_input.input")):
        envelope = refuse(job)
        assert envelope["code"] == "BAD_INPUT"
        [problem] = envelope["problems"]
        assert problem["field"] == field and f"{CONTEXT} tokens" in problem["reason"]


def test_bad_fields_are_each_named(refuse):
    envelope = refuse({"input": "", "encoding_format": "bytes", "dimensions": 0, "colour": 1})
    fields = {problem["field"] for problem in envelope["problems"]}
    assert {"input", "encoding_format", "dimensions", "colour"} <= fields
    assert refuse({"input": []})["problems"][0]["reason"] == "must not be empty"
    assert refuse({"input": [1, -2]})["problems"][0]["field"].startswith("input")


def test_dimensions_the_model_does_not_offer_and_unknown_token_ids_are_bad_input(refuse):
    envelope = refuse({"input": "hi", "dimensions": 48})
    assert envelope["code"] == "BAD_INPUT" and envelope["problems"][0]["field"] == "dimensions"
    assert refuse({"input": [10**6]})["code"] == "BAD_INPUT"


def test_an_unknown_model_name_is_bad_input_on_model(refuse):
    [problem] = refuse(openai({"model": "gpt-4", "input": "hi"}))["problems"]
    assert problem["field"] == "openai_input.model"
    [problem] = refuse({"model": "gpt-4", "input": "hi"})["problems"]
    assert problem["field"] == "model"


def test_models_lists_the_embedding_model(jobs):
    [models] = jobs[0]({"openai_route": "/v1/models", "openai_input": {}})
    assert [m["id"] for m in models["data"]] == [MODEL]


@pytest.mark.parametrize("job, field", [
    ({"prompt": "Hello"}, "prompt"),
    ({"messages": [{"role": "user", "content": "Hi"}]}, "messages"),
    ({"prompt": "Hello", "sampling_params": {"max_tokens": 4}}, "prompt"),
    ({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [{"role": "user", "content": "Hi"}]}},
     "openai_route"),
    ({"openai_route": "/v1/completions", "openai_input": {"prompt": "Hi"}}, "openai_route"),
])
def test_an_embedding_model_refuses_generation_requests_naming_the_field(refuse, job, field):
    envelope = refuse(job)
    assert envelope["code"] == "BAD_INPUT"
    [problem] = envelope["problems"]
    assert problem["field"] == field and "embedding model" in problem["reason"]


@pytest.mark.parametrize("job, field", [
    ({"input": "Hello"}, "input"),
    (openai({"input": "Hello"}), "openai_route"),
])
def test_a_generative_model_refuses_embedding_requests_naming_the_field(fail, job, field):
    envelope = fail(job)
    assert envelope["code"] == "BAD_INPUT"
    [problem] = envelope["problems"]
    assert problem["field"] == field and "makes no embeddings" in problem["reason"]


def test_the_worker_keeps_serving_after_refusals(embed, refuse):
    refuse({"input": ""})
    assert vectors(embed({"input": "still here"})).shape == (1, DIMENSIONS)


@pytest.fixture(scope="module")
def tokenizer_of_embedding(embedding_worker):
    return embedding_worker.host.engine.get_tokenizer()


def test_a_response_over_the_payload_limit_is_output_too_large_saying_what_makes_it_fit(refuse, embed, monkeypatch):
    monkeypatch.setenv("MAX_RESPONSE_BYTES", "4000")  # one 128-float vector is ~2.5 KB of JSON
    envelope = refuse({"input": TEXTS})
    assert envelope["code"] == "OUTPUT_TOO_LARGE" and "base64" in envelope["message"]
    assert len(embed({"input": TEXTS, "encoding_format": "base64"})["data"]) == len(TEXTS)


def test_vllms_binary_encodings_are_refused_on_the_openai_route_too(refuse):
    [problem] = refuse(openai({"input": "hi", "encoding_format": "bytes"}))["problems"]
    assert problem["field"] == "openai_input.encoding_format"


@pytest.mark.parametrize("form", ["native", "openai"])
def test_hostile_embedding_jobs_end_with_a_strict_answer_never_internal(jobs, embed, hostile, hostile_budget, form):
    """Issue 19's property (tests/workers/conftest.py) on the embedding request: from its schema, valid or spoilt."""
    schema = json_schema(EmbeddingInput)
    strategy = hostile.inputs(schema) if form == "native" else hostile.openai_jobs(EMBEDDINGS, schema)

    @hostile_budget
    @given(strategy)
    def job_ends(job_input):
        hostile.check_answer(jobs[0](job_input))

    job_ends()
    assert vectors(embed({"input": "still serving"})).shape == (1, DIMENSIONS)
