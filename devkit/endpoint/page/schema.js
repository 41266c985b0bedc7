// Reading a worker's input JSON Schema (pydantic's): each property's type, bounds, default and help text.

// A property without its `anyOf [X, null]` wrapper: {prop, nullable}.
export function unwrap(prop) {
  const options = prop.anyOf || [];
  const kept = options.filter((option) => option.type !== "null");
  if (options.length && kept.length === 1) {
    return { prop: { ...kept[0], ...without(prop, ["anyOf"]) }, nullable: kept.length < options.length };
  }
  return { prop, nullable: false };
}

function without(object, keys) {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

// The input control a property gets: number, integer, boolean, enum, text, or json (anything else).
export function kindOf(prop) {
  if (prop.enum) return "enum";
  if (["integer", "number", "boolean"].includes(prop.type)) return prop.type;
  if (prop.type === "string") return "text";
  return "json";
}

export function typeName(prop) {
  if (prop.anyOf) return prop.anyOf.map(typeName).join(" | ");
  if (prop.$ref) return prop.$ref.split("/").pop();
  if (prop.enum) return prop.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (prop.type === "array") return `array of ${prop.items ? typeName(prop.items) : "any"}`;
  return prop.type || "any";
}

// "1 to 1000, multiple of 8, up to 2000 characters": the property's bounds in words.
export function limitsOf(prop) {
  const parts = [];
  const low = prop.minimum ?? prop.exclusiveMinimum;
  const high = prop.maximum ?? prop.exclusiveMaximum;
  if (low !== undefined || high !== undefined) {
    const from = low === undefined ? "" : `${prop.exclusiveMinimum !== undefined ? "> " : ">= "}${low}`;
    const to = high === undefined ? "" : `${prop.exclusiveMaximum !== undefined ? "< " : "<= "}${high}`;
    parts.push([from, to].filter(Boolean).join(" and "));
  }
  if (prop.multipleOf !== undefined) parts.push(`multiple of ${prop.multipleOf}`);
  if (prop.minLength) parts.push(`at least ${prop.minLength} characters`);
  if (prop.maxLength !== undefined) parts.push(`at most ${prop.maxLength} characters`);
  if (prop.minItems) parts.push(`at least ${prop.minItems} items`);
  if (prop.maxItems !== undefined) parts.push(`at most ${prop.maxItems} items`);
  for (const option of prop.anyOf || []) {
    const inner = limitsOf(option);
    if (inner) parts.push(inner);
  }
  return parts.join(", ");
}

// Each property as {name, prop (unwrapped), nullable, required, kind}, in the schema's order.
export function fieldsOf(schema) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, raw]) => {
    const { prop, nullable } = unwrap(raw);
    return { name, raw, prop, nullable, required: required.has(name), kind: kindOf(prop) };
  });
}
