// Calls to the local endpoint with the API key the user gave (kept in sessionStorage, sent as Bearer).
const KEY_ITEM = "runpodApiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

export function headers(extra = {}) {
  const key = apiKey();
  return { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...extra };
}

// An endpoint answer that is not 2xx: RunPod's {"error": "..."} body, or the OpenAI error object.
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error;
    super(typeof detail === "string" ? detail : (detail && detail.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function call(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { error: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// Server-sent events of a streamed OpenAI request: calls onEvent with each parsed `data:` object.
export async function postEvents(path, body, onEvent, signal) {
  const response = await fetch(path, {
    method: "POST", signal, body: JSON.stringify(body),
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
  });
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON: the status says enough */ }
    throw new ApiError(response.status, parsed);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}
