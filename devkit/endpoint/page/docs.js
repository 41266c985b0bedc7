// The page at `/docs`: each worker's input schema as a table, and an example call for every route.
import { call } from "./api.js";
import { element } from "./form.js";
import { fieldsOf, limitsOf, typeName } from "./schema.js";
import { curl } from "./snippets.js";

const BASE = location.origin;

// Route, method and body of every client route (RunPod docs, "Operation reference"), and what it does.
function routes(name, input, chats) {
  const v2 = `/v2/${name}`;
  const list = [
    ["Queue a job; answers its id", `${v2}/run`, { input }],
    ["Run a job and wait for its result (up to ?wait= ms, default 90 s)", `${v2}/runsync`, { input }],
    ["A job's status, and its output once done", `${v2}/status/JOB_ID`],
    ["Chunks a streaming job yielded since the last call", `${v2}/stream/JOB_ID`],
    ["Cancel a queued or running job", `${v2}/cancel/JOB_ID`, null],
    ["Queue a FAILED or TIMED_OUT job again", `${v2}/retry/JOB_ID`, null],
    ["Workers by state and jobs by status", `${v2}/health`],
    ["Drop every queued job", `${v2}/purge-queue`, null],
  ];
  if (chats) {
    list.push(
      ["OpenAI: the served model", `${v2}/openai/v1/models`],
      ["OpenAI: chat completion (stream: true answers server-sent events)", `${v2}/openai/v1/chat/completions`,
        { model: "MODEL_ID", messages: input.messages || [{ role: "user", content: "Hi" }], max_tokens: 32, stream: true }],
      ["OpenAI: text completion", `${v2}/openai/v1/completions`, { model: "MODEL_ID", prompt: "Once upon a time", max_tokens: 32 }],
    );
  }
  return list;
}

function schemaTable(schema) {
  // data-label names each cell for the phone layout, where a row is shown as a stack of cells.
  const rows = fieldsOf(schema).map((field) => element("tr", {},
    element("td", { "data-label": "field" }, element("code", {}, field.name), field.required ? " (required)" : ""),
    element("td", { "data-label": "type" }, typeName(field.raw)),
    element("td", { "data-label": "default" }, field.prop.default === undefined ? "" : JSON.stringify(field.prop.default)),
    element("td", { "data-label": "limits" }, limitsOf(field.prop)),
    element("td", { "data-label": "description" }, field.prop.description || "")));
  const head = element("tr", {}, ...["field", "type", "default", "limits", "description"].map((h) => element("th", { scope: "col" }, h)));
  return element("div", { class: "table-wrap" }, element("table", {}, element("thead", {}, head), element("tbody", {}, ...rows)));
}

function workerDoc(name, { schema, example }) {
  const input = example || {};
  const section = element("section", { class: "doc", id: `doc-${name}`, "aria-labelledby": `title-${name}` },
    element("h2", { id: `title-${name}` }, name));
  if (schema) {
    section.append(element("h3", {}, "Input"), schemaTable(schema),
      element("details", {}, element("summary", {}, "Input JSON Schema"), element("pre", {}, JSON.stringify(schema, null, 2))));
  } else {
    section.append(element("p", {}, "This worker declares no input schema."));
  }
  section.append(element("h3", {}, "Routes"));
  for (const [what, path, body] of routes(name, input, Boolean(schema && schema.properties.messages))) {
    // null: a POST without a body; undefined: a GET.
    const text = body === null ? curl(BASE, path, undefined, { method: "POST" }) : curl(BASE, path, body);
    section.append(element("h4", {}, what), element("pre", { tabindex: "0" }, text));
  }
  return section;
}

async function start() {
  const workers = await call("GET", "/schemas");
  const names = Object.keys(workers);
  document.getElementById("toc").replaceChildren(element("p", {}, "Workers: ",
    ...names.flatMap((name, i) => [i ? " · " : "", element("a", { href: `#doc-${name}` }, name)])));
  document.getElementById("docs").replaceChildren(...names.map((name) => workerDoc(name, workers[name])));
  document.body.dataset.ready = "true";
}

start();
