// A job form generated from a worker's input JSON Schema: one labelled control per field, its help text
// (description, bounds, default), a slot for the worker's message about it; the values back as a job input.
import { fieldsOf, limitsOf } from "./schema.js";

const LONG_TEXT = 200; // strings allowed longer than this get a textarea

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export { element };

function helpText(field) {
  const { prop } = field;
  const parts = [prop.description || ""];
  const limits = limitsOf(prop);
  if (limits) parts.push(`Allowed: ${limits}.`);
  if (prop.default !== undefined && prop.default !== null) parts.push(`Default: ${JSON.stringify(prop.default)}.`);
  if (field.required) parts.push("Required.");
  else if (field.nullable || prop.default === null) parts.push("Leave empty to omit.");
  return parts.filter(Boolean).join(" ");
}

function control(field, value) {
  const { name, prop, kind } = field;
  const id = `field-${name}`;
  const described = `help-${name} error-${name}`;
  const common = { id, name, "aria-describedby": described, "data-kind": kind };
  if (kind === "boolean") {
    const box = element("input", { ...common, type: "checkbox" });
    box.checked = Boolean(value ?? prop.default);
    return box;
  }
  if (kind === "enum") {
    const select = element("select", common);
    if (field.nullable) select.append(element("option", { value: "" }, "(none)"));
    for (const option of prop.enum) select.append(element("option", { value: option }, String(option)));
    select.value = value ?? prop.default ?? "";
    return select;
  }
  if (kind === "integer" || kind === "number") {
    const step = prop.multipleOf ?? (kind === "integer" ? 1 : "any");
    const input = element("input", { ...common, type: "number", inputmode: kind === "integer" ? "numeric" : "decimal",
      min: prop.minimum, max: prop.maximum, step, placeholder: prop.default ?? "" });
    input.value = value ?? "";
    return input;
  }
  if (kind === "text" && (prop.maxLength ?? Infinity) <= LONG_TEXT) {
    const input = element("input", { ...common, type: "text", maxlength: prop.maxLength, placeholder: prop.default ?? "" });
    input.value = value ?? "";
    return input;
  }
  const rows = kind === "json" ? 4 : 2;
  const area = element("textarea", { ...common, rows, spellcheck: kind === "json" ? "false" : undefined,
    placeholder: kind === "json" ? "JSON" : (prop.default ?? "") });
  area.value = value === undefined || value === null ? "" : kind === "json" ? JSON.stringify(value, null, 1) : value;
  return area;
}

// A file picker beside a base64 field (sdxl's img2img `image`): the file goes in as bare base64.
function filePicker(field, target) {
  const picker = element("input", { type: "file", accept: "image/png,image/jpeg,image/webp", id: `file-${field.name}`,
    "aria-label": `Upload a file for ${field.name}` });
  picker.addEventListener("change", () => {
    const [file] = picker.files;
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      target.value = String(reader.result).split(",", 2)[1];
      target.dispatchEvent(new Event("input", { bubbles: true }));
    };
    reader.readAsDataURL(file);
  });
  return picker;
}

// Fills `form` with the schema's fields; returns the form's reader: () => {input} or {invalid: [names]}.
export function buildForm(form, schema, example) {
  const fields = fieldsOf(schema);
  const given = example || {};
  const grid = element("div", { class: "fields" });
  for (const field of fields) {
    const input = control(field, given[field.name]);
    const label = element("label", { for: input.id }, field.name, field.required ? element("span", { class: "required", "aria-hidden": "true" }, " *") : "");
    const row = element("div", { class: `field field-${field.kind}`, "data-field": field.name });
    row.append(label, input);
    if (field.kind === "text" && /base64/i.test(field.prop.description || "")) row.append(filePicker(field, input));
    row.append(element("p", { class: "help", id: `help-${field.name}` }, helpText(field)),
      element("p", { class: "problem", id: `error-${field.name}`, role: "alert" }));
    grid.append(row);
  }
  form.prepend(grid);
  return () => readForm(form, fields, given);
}

function readForm(form, fields, example) {
  const input = {};
  const invalid = [];
  for (const field of fields) {
    const node = form.elements[field.name];
    const { prop, kind, name } = field;
    if (kind === "boolean") {
      if (name in example || node.checked !== Boolean(prop.default)) input[name] = node.checked;
      continue;
    }
    const text = node.value;
    if (text === "") continue; // omitted: the worker applies its default (or reports a missing field)
    if (kind === "integer" || kind === "number") {
      const number = Number(text);
      input[name] = Number.isNaN(number) ? text : number; // the worker says why a non-number is wrong
    } else if (kind === "json") {
      try { input[name] = JSON.parse(text); } catch (error) {
        invalid.push(name);
        showProblem(form, name, `not valid JSON: ${error.message}`);
      }
    } else {
      input[name] = text;
    }
  }
  return invalid.length ? { invalid } : { input };
}

export function clearProblems(form) {
  for (const node of form.querySelectorAll(".problem")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// Puts `message` beside field `name`; false if the form has no such field.
export function showProblem(form, name, message) {
  const slot = form.querySelector(`#error-${CSS.escape(name)}`);
  if (!slot) return false;
  slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
  form.elements[name]?.setAttribute("aria-invalid", "true");
  return true;
}
