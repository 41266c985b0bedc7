// The request behind a form as a curl line and as Python with the official `runpod` client, ready to copy.
// The key is never written into them: both read it from $RUNPOD_API_KEY.

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export function curl(base, path, body, { keyed = true, method = body === undefined ? "GET" : "POST" } = {}) {
  const lines = [`curl -X ${method} ${base}${path}`];
  if (keyed) lines.push(`-H "Authorization: Bearer $RUNPOD_API_KEY"`);
  if (body !== undefined) lines.push("-H 'Content-Type: application/json'", `-d ${shellQuote(JSON.stringify(body))}`);
  return lines.join(" \\\n  ");
}

// A JSON value as a Python literal (true/false/null become True/False/None).
export function python(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
  const inner = `${indent}    `;
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((item) => inner + python(item, inner)).join(",\n")},\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${python(v, inner)}`).join(",\n")},\n${indent}}`;
}

export function runpodPython(base, name, input, { stream = false } = {}) {
  const head = [
    "import os",
    "",
    "import runpod",
    "",
    'runpod.api_key = os.environ["RUNPOD_API_KEY"]',
    `runpod.endpoint_url_base = "${base}/v2"  # this local endpoint; leave it out for RunPod`,
    `endpoint = runpod.Endpoint("${name}")`,
  ];
  const call = stream
    ? [`job = endpoint.run(${python(input)})`, "for chunk in job.stream():", "    print(chunk)"]
    : [`print(endpoint.run_sync(${python(input)}, timeout=300))`];
  return [...head, ...call].join("\n");
}

export function openaiPython(base, name, body) {
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${base}/v2/${name}/openai/v1", api_key=os.environ["RUNPOD_API_KEY"])`,
    `for chunk in client.chat.completions.create(**${python(body)}):`,
    "    if chunk.choices:",
    '        print(chunk.choices[0].delta.content or "", end="", flush=True)',
  ].join("\n");
}
