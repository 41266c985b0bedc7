"""llm-vllm's embedding deployment as `make dev` serves it (worker.toml [variants.embedding]: the worker as a process
on the tiny embedding model, behind the local endpoint): the official `openai` client on /openai/v1/embeddings, the
runpod SDK on the native request."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from devkit.fixtures.embedding import DIMENSIONS, MATRYOSHKA_DIMENSIONS
from devkit.manifest import endpoint_ids

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]

NAME = "llm-vllm-embedding"
#: The variant's served name (its worker.toml env), not model.toml's chat model.
MODEL = "tiny-embedding"
TEXTS = ["Hello, world!", "naïve café 🙂"]


@pytest.fixture(scope="module")
def endpoint(endpoint_factory):
    return endpoint_factory([NAME], env={NAME: {"DTYPE": "float32", "GPU_MEMORY_UTILIZATION": ""}},
                            scaling={NAME: {"min_workers": 1, "max_workers": 1}}, timeout=300)


@pytest.fixture(scope="module")
def client(endpoint):
    return openai.OpenAI(base_url=f"{endpoint.base_url}/v2/{NAME}/openai/v1", api_key="local", max_retries=0,
                         timeout=120)


def test_make_dev_serves_the_embedding_variant_of_llm_vllm():
    assert NAME in endpoint_ids()


def test_the_openai_client_gets_one_vector_per_input_in_openais_shape(client):
    reply = client.embeddings.create(model=MODEL, input=TEXTS)  # the client asks for base64 and decodes it
    assert reply.object == "list" and reply.model == MODEL
    assert [(item.object, item.index, len(item.embedding)) for item in reply.data] == [
        ("embedding", 0, DIMENSIONS), ("embedding", 1, DIMENSIONS)]
    assert reply.usage.prompt_tokens == reply.usage.total_tokens > 0
    floats = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    np.testing.assert_allclose([item.embedding for item in floats.data], [item.embedding for item in reply.data],
                               rtol=1e-6, atol=1e-7)


def test_dimensions_through_the_openai_client(client):
    reply = client.embeddings.create(model=MODEL, input=TEXTS[0], dimensions=MATRYOSHKA_DIMENSIONS[0])
    assert len(reply.data[0].embedding) == MATRYOSHKA_DIMENSIONS[0]


def test_a_bad_request_is_a_400_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=TEXTS[0], dimensions=48)
    error = caught.value.body
    assert error["code"] == "BAD_INPUT" and error["param"] == "dimensions"


def test_chat_on_the_embedding_deployment_is_a_400_naming_the_route(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.body["param"] == "openai_route" and "embedding model" in caught.value.body["message"]


def test_the_native_request_through_the_runpod_client_gives_the_same_vectors(client, endpoint, runpod_endpoint):
    # The SDK sends a request that has an "input" key as the whole body: the native request goes inside one.
    [native] = runpod_endpoint(endpoint, NAME).run_sync({"input": {"input": TEXTS, "encoding_format": "base64"}},
                                                        timeout=120)  # a generator worker's aggregated output
    routed = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    decoded = [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in native["data"]]
    np.testing.assert_allclose(decoded, [item.embedding for item in routed.data], rtol=1e-6, atol=1e-7)
