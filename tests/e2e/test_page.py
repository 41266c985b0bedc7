"""The page at `/` and `/docs` in a real headless chromium, against real workers behind the local endpoint."""

from __future__ import annotations

import base64
import io
import json

import pytest

pytestmark = pytest.mark.e2e

KEY = "page-test-key"
WORKERS = ["progress-demo", "llm-hf", "sdxl"]
#: Laptop and phone widths every page is photographed at.
WIDTHS = (1280, 390)
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def endpoint(endpoint_factory):
    """All three kinds of worker behind one key, one warm worker each."""
    return endpoint_factory(WORKERS, scaling={name: {"min_workers": 1, "max_workers": 1} for name in WORKERS},
                            api_key=KEY)


@pytest.fixture
def page(browser, endpoint, screenshots, request):
    """A fresh tab on `/`; every request it makes is kept in ``page.requested``; photographed at the end."""
    tab = browser.new_page()
    tab.requested = []
    tab.on("request", lambda sent: tab.requested.append(sent.url))
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    for width in WIDTHS:
        tab.set_viewport_size({"width": width, "height": 900})
        tab.screenshot(path=screenshots / f"{request.node.name}-{width}.png", full_page=True)
    tab.close()


def open_worker(page, endpoint, name: str) -> None:
    page.goto(f"{endpoint.base_url}/#{name}")
    page.wait_for_selector("body[data-ready]")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector(f'[data-worker="{name}"] .badge[data-state="ready"]')


def wait_status(page, *statuses: str) -> str:
    page.wait_for_function(f"{json.dumps(statuses)}.includes(document.querySelector('#job-status').dataset.status)")
    return page.locator("#job-status").get_attribute("data-status")


def record(page, selector: str, expression: str) -> None:
    """From now on, keep ``expression`` (JS, over ``node``) each time ``selector``'s subtree changes."""
    page.evaluate("""([selector, expression]) => {
        const node = document.querySelector(selector);
        const read = new Function("node", `return (${expression});`);
        window.seen = [read(node)];
        new MutationObserver(() => window.seen.push(read(node)))
            .observe(node, {subtree: true, childList: true, characterData: true, attributes: true});
    }""", [selector, expression])


def test_the_page_asks_for_the_key_and_shows_each_worker_ready(page, endpoint):
    page.goto(f"{endpoint.base_url}/")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector('[data-worker="sdxl"] .badge[data-state="locked"]')
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    for name in WORKERS:
        page.wait_for_selector(f'[data-worker="{name}"] .badge[data-state="ready"]')
    assert page.evaluate("sessionStorage.getItem('runpodApiKey')") == KEY
    assert all(url.startswith(endpoint.base_url) or url.startswith("data:") for url in page.requested)


def test_a_worker_that_cannot_start_shows_unhealthy_with_its_reason(page, endpoint_factory, fixture_worker):
    from setup_fails import REASON

    failing = endpoint_factory([fixture_worker("setup_fails", min_workers=1)], ready=False)
    page.goto(f"{failing.base_url}/")
    page.wait_for_selector('[data-worker="setup-fails"] .badge[data-state="unhealthy"]')
    assert REASON in page.locator("#worker-state").text_content()
    assert page.get_by_label("input").is_visible()  # no input model: the input is one JSON field


def test_a_progress_demo_job_moves_the_bar_to_100_percent(page, endpoint):
    open_worker(page, endpoint, "progress-demo")
    page.get_by_label("steps").fill("20")
    page.get_by_label("step_seconds").fill("0.1")
    record(page, "#progress-label", "node.textContent")
    page.get_by_role("button", name="Run and stream").click()
    assert wait_status(page, "COMPLETED", "FAILED") == "COMPLETED"
    assert page.locator("#progress-label").text_content() == "100 %"
    assert page.evaluate("document.querySelector('#progress').value") == 1
    between = {text for text in page.evaluate("window.seen") if text not in ("0 %", "100 %")}
    assert between, "the bar went straight to 100 %: no chunk was shown while the job ran"


def test_an_llm_chat_shows_text_before_the_reply_ends(page, endpoint):
    open_worker(page, endpoint, "llm-hf")
    page.get_by_label("Message", exact=True).fill("Tell me a long story.")
    page.locator("#chat-max-tokens").fill("300")
    page.locator("#chat-ignore-eos").check()  # random tiny weights: EOS could otherwise end it at once
    record(page, "#chat", "[node.dataset.state, (node.querySelector('.assistant .content:last-of-type') || "
                          "{textContent: ''}).textContent.length]")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector('#chat[data-state="done"]')
    assert page.locator("#chat-error").is_hidden()
    seen = page.evaluate("window.seen")
    final = seen[-1][1]
    while_streaming = [length for state, length in seen if state == "streaming" and length > 0]
    assert while_streaming and min(while_streaming) < final, seen


def test_an_llm_job_streams_its_tokens_while_it_runs(page, endpoint):
    open_worker(page, endpoint, "llm-hf")
    form = page.locator("#job-form")  # the chat below has its own max_tokens and ignore_eos
    form.get_by_label("max_tokens", exact=True).fill("400")  # the tiny model holds 512 tokens
    form.get_by_label("ignore_eos").check()
    record(page, "#result", "[document.querySelector('#job-status').dataset.status, "
                            "document.querySelector('#stream-text').textContent.length]")
    page.get_by_role("button", name="Run and stream").click()
    assert wait_status(page, "COMPLETED", "FAILED") == "COMPLETED"
    seen = page.evaluate("window.seen")
    while_running = [length for status, length in seen if status == "IN_PROGRESS" and length > 0]
    assert while_running and min(while_running) < seen[-1][1], seen


def test_sdxl_shows_its_image_at_the_asked_size(page, endpoint):
    open_worker(page, endpoint, "sdxl")
    page.get_by_label("width").fill("64")
    page.get_by_label("height").fill("80")
    page.get_by_label("num_inference_steps").fill("2")
    page.get_by_label("format").select_option("png")
    page.get_by_role("button", name="Run", exact=True).click()
    assert wait_status(page, "COMPLETED", "FAILED") == "COMPLETED"
    image = page.locator("#images img[data-width]")
    image.wait_for()
    assert (image.get_attribute("data-width"), image.get_attribute("data-height")) == ("64", "80")


def test_sdxl_steps_move_the_bar_while_the_job_runs(page, endpoint):
    open_worker(page, endpoint, "sdxl")
    page.get_by_label("width").fill("256")
    page.get_by_label("height").fill("256")
    page.get_by_label("num_inference_steps").fill("100")
    record(page, "#progress-wrap", "[node.hidden, document.querySelector('#progress-label').textContent]")
    page.get_by_role("button", name="Run", exact=True).click()
    assert wait_status(page, "COMPLETED", "FAILED") == "COMPLETED"
    # progress_update's value, read from /status while the job was IN_PROGRESS
    between = {label for hidden, label in page.evaluate("window.seen") if not hidden and label not in ("0 %", "100 %")}
    assert between, "no step was shown while the job ran"
    assert page.locator("#progress-label").text_content() == "100 %"


def test_sdxl_img2img_from_an_uploaded_file(page, endpoint):
    from PIL import Image

    source = io.BytesIO()
    Image.new("RGB", (72, 64), (10, 200, 30)).save(source, format="PNG")
    open_worker(page, endpoint, "sdxl")
    page.get_by_label("width").fill("")
    page.get_by_label("height").fill("")
    page.get_by_label("num_inference_steps").fill("4")
    page.get_by_label("strength").fill("0.5")
    page.locator("#file-image").set_input_files({"name": "source.png", "mimeType": "image/png",
                                                  "buffer": source.getvalue()})
    page.wait_for_function("document.querySelector('#field-image').value.length > 0")
    assert base64.b64decode(page.locator("#field-image").input_value()) == source.getvalue()
    page.get_by_role("button", name="Run", exact=True).click()
    assert wait_status(page, "COMPLETED", "FAILED") == "COMPLETED"
    image = page.locator("#images img[data-width]")
    image.wait_for()
    assert (image.get_attribute("data-width"), image.get_attribute("data-height")) == ("72", "64")


def test_a_bad_field_shows_the_workers_reason_beside_it(page, endpoint, http):
    open_worker(page, endpoint, "progress-demo")
    page.get_by_label("steps").fill("0")
    page.get_by_role("button", name="Run", exact=True).click()
    assert wait_status(page, "COMPLETED", "FAILED") == "FAILED"
    job_id = page.locator("#job-status").text_content().split("·")[-1].strip()
    body = http.get(f"{endpoint.base_url}/v2/progress-demo/status/{job_id}",
                    headers={"Authorization": f"Bearer {KEY}"}).json()
    [problem] = json.loads(body["error"])["problems"]
    assert problem["field"] == "steps"
    beside = page.locator("#error-steps")
    assert beside.is_visible()
    assert problem["reason"] in beside.text_content()
    assert page.get_by_label("steps").get_attribute("aria-invalid") == "true"
    assert "BAD_INPUT" in page.locator("#job-error").text_content()


def test_cancel_stops_a_running_job(page, endpoint):
    open_worker(page, endpoint, "progress-demo")
    page.get_by_label("steps").fill("1000")
    page.get_by_label("step_seconds").fill("1")
    page.get_by_role("button", name="Run", exact=True).click()
    wait_status(page, "IN_PROGRESS")
    page.get_by_role("button", name="Cancel").click()
    assert wait_status(page, "CANCELLED", "COMPLETED", "FAILED") == "CANCELLED"
    assert page.get_by_role("button", name="Run", exact=True).is_enabled()
    assert page.get_by_role("button", name="Cancel").is_disabled()


def test_openapi_json_carries_each_workers_input_schema(endpoint, http):
    components = http.get(f"{endpoint.base_url}/openapi.json").json()["components"]["schemas"]
    schemas = http.get(f"{endpoint.base_url}/schemas").json()
    assert components["progress-demo.input"] == schemas["progress-demo"]["schema"]
    messages = components["llm-hf.input"]["properties"]["messages"]["anyOf"][0]["items"]
    assert messages == {"$ref": "#/components/schemas/llm-hf.ChatMessage"}
    assert components["llm-hf.ChatMessage"]["properties"]["role"]["enum"][0] == "system"


def test_docs_show_each_workers_schema_and_routes_from_the_endpoint_alone(page, endpoint):
    page.goto(f"{endpoint.base_url}/docs")
    page.wait_for_selector("body[data-ready]")
    schemas = page.request.get(f"{endpoint.base_url}/schemas").json()
    for name in WORKERS:
        section = page.locator(f"#doc-{name}")
        fields = section.locator("tbody tr td:first-child code").all_text_contents()
        assert fields == list(schemas[name]["schema"]["properties"])
        assert f"/v2/{name}/runsync" in section.text_content()
    assert "/openai/v1/chat/completions" in page.locator("#doc-llm-hf").text_content()
    assert all(url.startswith(endpoint.base_url) or url.startswith("data:") for url in page.requested)
