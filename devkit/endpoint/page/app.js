// The page at `/`: each worker's state, a form from its input schema, its jobs run, streamed and cancelled
// through the endpoint's own RunPod routes, a chat over the OpenAI route, and the request as code.
import { ApiError, apiKey, call, postEvents, setApiKey } from "./api.js";
import { buildForm, clearProblems, element, showProblem } from "./form.js";
import { curl, openaiPython, runpodPython } from "./snippets.js";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);
const POLL_MS = 300;
const HEALTH_MS = 2000;
const SHOWN_STRING = 300; // longer strings (base64 images) are cut in the output JSON shown
const BASE = location.origin;
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let workers = {}; // name -> {schema, example}
let current = null; // {name, read, streams, jobId, mode}
const models = {}; // name -> served model id (OpenAI route)

// --- worker list and state -----------------------------------------------------------------------

// RunPod's /health body (plus the stand-in's startupFailure: why the latest start failed, null once one
// succeeds) as one state and its reason.
function stateOf(health) {
  const w = health.workers;
  const jobs = `${health.jobs.inQueue} queued, ${health.jobs.inProgress} running`;
  if (health.startupFailure) return { state: "unhealthy", reason: `cannot start: ${health.startupFailure}` };
  const marked = w.unhealthy ? `; ${w.unhealthy} unhealthy, being replaced` : "";
  if (w.ready) return { state: "ready", reason: `${w.ready} worker(s): ${w.idle} idle, ${w.running} busy${marked}; jobs: ${jobs}` };
  if (w.unhealthy) return { state: "unhealthy", reason: `a worker stopped answering or kept exiting${marked}` };
  if (w.initializing) return { state: "starting", reason: `a worker is starting (loading its model); jobs: ${jobs}` };
  return { state: "idle", reason: "no worker running: one starts on the next job" };
}

async function refreshHealth() {
  for (const name of Object.keys(workers)) {
    let shown;
    try {
      shown = stateOf(await call("GET", `/v2/${name}/health`));
    } catch (error) {
      shown = error instanceof ApiError && error.status === 401
        ? { state: "locked", reason: "the endpoint has an API key: enter it above" }
        : { state: "unknown", reason: error.message };
    }
    const badge = document.querySelector(`[data-worker="${CSS.escape(name)}"] .badge`);
    badge.textContent = shown.state;
    badge.dataset.state = shown.state;
    badge.title = shown.reason;
    if (current && current.name === name) {
      const line = $("worker-state");
      line.dataset.state = shown.state;
      line.textContent = `${shown.state}: ${shown.reason}`;
    }
  }
}

function listWorkers() {
  const list = element("ul");
  for (const name of Object.keys(workers)) {
    list.append(element("li", {}, element("a", { href: `#${name}`, "data-worker": name },
      element("span", { class: "name" }, name), " ", element("span", { class: "badge", "data-state": "unknown" }, "…"))));
  }
  $("workers").replaceChildren(list);
}

// --- the selected worker --------------------------------------------------------------------------

function selectWorker(name) {
  if (!workers[name]) name = Object.keys(workers)[0];
  if (!name) return;
  for (const link of document.querySelectorAll("[data-worker]")) {
    if (link.dataset.worker === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const { schema, example } = workers[name];
  const form = $("job-form");
  form.querySelector(".fields")?.remove();
  // A worker without an input model (a test fixture) gets its input as one JSON field.
  const fallback = { properties: { input: { description: "The job input, as JSON (this worker declares no input schema)." } }, required: ["input"] };
  const reader = buildForm(form, schema || fallback, schema ? example : { input: example || {} });
  const read = schema ? reader : () => {
    const got = reader();
    return got.invalid ? got : { input: got.input.input };
  };
  current = { name, read, streams: Boolean(schema && schema.properties.stream), jobId: null, mode: "run" };
  $("worker-name").textContent = name;
  $("worker-state").textContent = "";
  $("url-runpod").textContent = `${BASE}/v2/${name}`;
  const chats = Boolean(schema && schema.properties.messages);
  $("url-openai-wrap").hidden = !chats;
  $("url-openai").textContent = `${BASE}/v2/${name}/openai/v1`;
  $("chat").hidden = !chats;
  $("chat-log").replaceChildren();
  $("chat-error").hidden = true;
  chatHistory = [];
  resetResult();
  $("job-status").textContent = "No job yet.";
  $("worker").hidden = false;
  updateSnippets();
  refreshHealth();
}

// --- running a job --------------------------------------------------------------------------------

function resetResult() {
  $("job-status").dataset.status = "";
  $("progress-wrap").hidden = true;
  setProgress(0, false);
  $("progress-detail").textContent = "";
  $("job-error").hidden = true;
  $("job-error").replaceChildren();
  $("stream-text").hidden = true;
  $("stream-text").textContent = "";
  $("images").replaceChildren();
  $("output-wrap").hidden = true;
}

function setStatus(status, detail = "") {
  const line = $("job-status");
  line.dataset.status = status;
  line.textContent = detail ? `${status} · ${detail}` : status;
}

function setProgress(fraction, show = true) {
  if (show) $("progress-wrap").hidden = false;
  const bounded = Math.min(Math.max(fraction, 0), 1);
  $("progress").value = bounded;
  $("progress-label").textContent = `${Math.round(bounded * 100)} %`;
}

function setBusy(busy) {
  $("run").disabled = busy;
  $("run-stream").disabled = busy;
  $("cancel").disabled = !busy;
}

// A chunk or a progress update: its `progress` (0..1) moves the bar, its text is appended.
function showChunk(chunk) {
  if (!chunk || typeof chunk !== "object") return;
  if (typeof chunk.progress === "number") setProgress(chunk.progress);
  if (typeof chunk.step === "number" && typeof chunk.steps === "number") {
    $("progress-detail").textContent = `step ${chunk.step} of ${chunk.steps}${chunk.stage ? ` (${chunk.stage})` : ""}`;
  }
  const choice = chunk.choices && chunk.choices[0];
  const text = chunk.text ?? (choice && (choice.delta ? choice.delta.content : choice.text));
  if (typeof text === "string" && text) {
    const box = $("stream-text");
    box.hidden = false;
    box.textContent += text;
    box.scrollTop = box.scrollHeight; // follow the newest text, as a terminal does
  }
}

async function followStatus(name, id) {
  for (;;) {
    const body = await call("GET", `/v2/${name}/status/${id}`);
    setStatus(body.status, id);
    if (TERMINAL.has(body.status)) return body;
    if (body.status === "IN_PROGRESS") showChunk(body.output); // progress_update's value while it runs
    await sleep(POLL_MS);
  }
}

async function followStream(name, id) {
  for (;;) {
    // /stream holds the call open until a chunk comes (up to 2 s), so this loop does not spin.
    const body = await call("GET", `/v2/${name}/stream/${id}`);
    setStatus(body.status, id);
    for (const item of body.stream || []) showChunk(item.output);
    if (TERMINAL.has(body.status)) return call("GET", `/v2/${name}/status/${id}`);
  }
}

function imagesOf(output, input) {
  const entries = output && Array.isArray(output.images) ? output.images : [];
  return entries.map((entry) => {
    const data = typeof entry === "string" ? entry : entry.image || entry.url || "";
    const format = (entry.format || input.format || "png").replace("jpg", "jpeg");
    return /^(data:|https?:)/.test(data) ? data : `data:image/${format};base64,${data}`;
  });
}

function showImages(sources) {
  const box = $("images");
  sources.forEach((src, index) => {
    const caption = element("figcaption", {}, `Image ${index + 1}`);
    const image = element("img", { src, alt: `Image ${index + 1} from ${current.name}` });
    image.addEventListener("load", () => {
      image.dataset.width = image.naturalWidth;
      image.dataset.height = image.naturalHeight;
      caption.textContent = `Image ${index + 1}: ${image.naturalWidth} × ${image.naturalHeight}`;
    });
    box.append(element("figure", {}, image, caption));
  });
}

// A non-streamed LLM reply's text, shown as the streamed text would be.
function textOf(output) {
  const first = Array.isArray(output) ? output[0] : output;
  if (!first || typeof first !== "object") return null;
  if (typeof first.text === "string") return first.text;
  const choice = first.choices && first.choices[0];
  return choice ? (choice.message ? choice.message.content : choice.text) : null;
}

function showOutput(body, input) {
  const output = body.output;
  if (!$("progress-wrap").hidden) setProgress(1);
  const text = textOf(output);
  if (text && !$("stream-text").textContent) showChunk({ text });
  showImages(imagesOf(output, input));
  $("output").textContent = JSON.stringify(body, (key, value) =>
    typeof value === "string" && value.length > SHOWN_STRING ? `${value.slice(0, 60)}… (${value.length} characters)` : value, 2);
  $("output-wrap").hidden = false;
}

// A FAILED job's error: the shared.errors envelope (a JSON string), each field problem beside its field.
function showEnvelope(error) {
  let envelope;
  try { envelope = typeof error === "string" ? JSON.parse(error) : error; } catch { envelope = { message: error }; }
  if (!envelope || typeof envelope !== "object") envelope = { message: String(error) };
  const box = $("job-error");
  box.replaceChildren(element("p", {}, element("strong", {}, envelope.code || "ERROR"), `: ${envelope.message || ""}`));
  const unplaced = element("ul");
  for (const problem of envelope.problems || []) {
    const [top, ...rest] = String(problem.field).split(".");
    const got = problem.value === undefined || problem.value === null ? "" : ` (got ${JSON.stringify(problem.value)})`;
    const message = `${rest.length ? `${rest.join(".")}: ` : ""}${problem.reason}${got}`;
    if (!showProblem($("job-form"), top, message)) unplaced.append(element("li", {}, `${problem.field}: ${message}`));
  }
  if (unplaced.children.length) box.append(unplaced);
  if (envelope.retryable !== undefined) box.append(element("p", { class: "muted" }, `retryable: ${envelope.retryable}`));
  box.hidden = false;
}

function showHttpError(error) {
  const box = $("job-error");
  const status = error instanceof ApiError ? `HTTP ${error.status}` : "Request failed";
  box.replaceChildren(element("p", {}, element("strong", {}, status), `: ${error.message}`));
  box.hidden = false;
}

async function runJob(stream) {
  const form = $("job-form");
  clearProblems(form);
  resetResult();
  const read = current.read();
  if (read.invalid) {
    setStatus("NOT SENT", "fix the fields marked above");
    form.elements[read.invalid[0]].focus();
    return;
  }
  const { input } = read;
  if (stream && current.streams) input.stream = true;
  current.mode = stream ? "stream" : "run";
  updateSnippets(input);
  const { name } = current;
  setBusy(true);
  try {
    const job = await call("POST", `/v2/${name}/run`, { input });
    current.jobId = job.id;
    setStatus(job.status, job.id);
    const body = stream ? await followStream(name, job.id) : await followStatus(name, job.id);
    if (body.status === "COMPLETED") showOutput(body, input);
    else if (body.error !== undefined) showEnvelope(body.error);
    if (body.status === "FAILED") form.querySelector('[aria-invalid="true"]')?.focus();
  } catch (error) {
    showHttpError(error);
  } finally {
    current.jobId = null;
    setBusy(false);
  }
}

async function cancelJob() {
  if (!current.jobId) return;
  try {
    await call("POST", `/v2/${current.name}/cancel/${current.jobId}`);
  } catch (error) {
    showHttpError(error);
  }
}

// --- the request as code --------------------------------------------------------------------------

function showSnippets(curlText, pythonText) {
  $("curl-code").textContent = curlText;
  $("python-code").textContent = pythonText;
}

function updateSnippets(given) {
  if (!current) return;
  const read = given ? { input: given } : current.read();
  if (read.invalid) return;
  const { name, mode } = current;
  if (mode === "stream") {
    const input = current.streams ? { ...read.input, stream: true } : read.input;
    showSnippets(`${curl(BASE, `/v2/${name}/run`, { input })}\n\n# then, with the job id it answers, until the status is final:\n${curl(BASE, `/v2/${name}/stream/JOB_ID`)}`,
      runpodPython(BASE, name, input, { stream: true }));
  } else {
    showSnippets(curl(BASE, `/v2/${name}/runsync`, { input: read.input }), runpodPython(BASE, name, read.input));
  }
}

async function copy(id, button) {
  const text = $(id).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on another host): select the text for Ctrl-C instead.
    getSelection().selectAllChildren($(id));
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}

// --- chat over the OpenAI route -------------------------------------------------------------------

let chatHistory = [];
let chatAbort = null;

async function modelOf(name) {
  if (!models[name]) models[name] = (await call("GET", `/v2/${name}/openai/v1/models`)).data[0].id;
  return models[name];
}

function addBubble(role, text) {
  const body = element("div", { class: "content" }, text);
  $("chat-log").append(element("li", { class: `bubble ${role}`, "data-role": role }, element("span", { class: "role" }, role), body));
  return body;
}

async function sendChat(event) {
  event.preventDefault();
  const text = $("chat-message").value.trim();
  if (!text || chatAbort) return;
  const { name } = current;
  const section = $("chat");
  $("chat-error").hidden = true;
  chatHistory.push({ role: "user", content: text });
  addBubble("user", text);
  const reply = addBubble("assistant", "");
  chatAbort = new AbortController();
  section.dataset.state = "streaming";
  $("chat-send").disabled = true;
  $("chat-stop").disabled = false;
  try {
    const body = { model: await modelOf(name), messages: chatHistory, stream: true,
      max_tokens: Number($("chat-max-tokens").value) || undefined, temperature: Number($("chat-temperature").value) };
    if ($("chat-ignore-eos").checked) body.ignore_eos = true;
    showSnippets(curl(BASE, `/v2/${name}/openai/v1/chat/completions`, body), openaiPython(BASE, name, body));
    await postEvents(`/v2/${name}/openai/v1/chat/completions`, body, (chunk) => {
      if (chunk.error) throw new ApiError(200, chunk);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) reply.textContent += delta.content;
    }, chatAbort.signal);
  } catch (error) {
    const stopped = error.name === "AbortError";
    $("chat-error").textContent = stopped ? "Stopped." : `Error: ${error.message}`;
    $("chat-error").hidden = false;
  } finally {
    chatHistory.push({ role: "assistant", content: reply.textContent });
    chatAbort = null;
    section.dataset.state = "done";
    $("chat-send").disabled = false;
    $("chat-stop").disabled = true;
  }
}

// --- start ----------------------------------------------------------------------------------------

function showKeyState() {
  $("key-state").textContent = apiKey() ? "key set for this tab" : "no key";
}

async function start() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key").value.trim());
    $("api-key").value = "";
    showKeyState();
    refreshHealth();
  });
  showKeyState();
  $("job-form").addEventListener("submit", (event) => { event.preventDefault(); runJob(false); });
  $("run-stream").addEventListener("click", () => runJob(true));
  $("cancel").addEventListener("click", cancelJob);
  $("job-form").addEventListener("input", () => updateSnippets());
  $("chat-form").addEventListener("submit", sendChat);
  $("chat-stop").addEventListener("click", () => chatAbort && chatAbort.abort());
  $("chat-clear").addEventListener("click", () => { chatHistory = []; $("chat-log").replaceChildren(); });
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => copy(button.dataset.copy, button));
  }
  workers = await call("GET", "/schemas");
  listWorkers();
  selectWorker(decodeURIComponent(location.hash.slice(1)));
  window.addEventListener("hashchange", () => selectWorker(decodeURIComponent(location.hash.slice(1))));
  setInterval(refreshHealth, HEALTH_MS);
  document.body.dataset.ready = "true";
}

start();
