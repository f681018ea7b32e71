// ATTEST policy workbench: plain JavaScript, no build step. Everything is evaluated by the server (the webhook's
// own pipeline); this page only edits and shows.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { records: [], policies: [], record: -1, sources: {} };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({ error: resp.statusText }));
  return { status: resp.status, data };
}

function describe(r) {
  const obj = r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
  return `${r.operation} ${obj}`;
}

function renderRecords() {
  const list = $("records");
  list.replaceChildren();
  $("no-records").hidden = state.records.length > 0;
  state.records.forEach((r, i) => {
    const when = r.time ? new Date(r.time).toLocaleString() : r.source;
    const li = el("li", { class: r.decision || "manifest", "data-id": String(i), "aria-selected": "false", tabindex: "0" },
      el("span", { class: "what" }, describe(r)),
      el("span", { class: "when" }, `${when}${r.decision ? " · " + r.decision : ""}${r.user ? " · " + r.user : ""}`));
    li.addEventListener("click", () => choose(i));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") choose(i); });
    list.append(li);
  });
}

function choose(i) {
  state.record = i;
  for (const li of $("records").children) li.setAttribute("aria-selected", li.dataset.id === String(i) ? "true" : "false");
  const r = state.records[i];
  $("input").value = JSON.stringify(r.input, null, 2);
  $("test-name").value = (r.name || "case").replace(/[^A-Za-z0-9_]+/g, "_").toLowerCase();
  clearResults();
}

function selectPolicy(name) {
  const keep = $("policy").dataset.current;
  if (keep) state.sources[keep] = $("source").value; // edits survive switching policies
  const p = state.policies.find((p) => p.name === name);
  $("policy").value = name;
  $("policy").dataset.current = name;
  $("policy-file").textContent = `${p.file} · mode ${p.mode || "off"}`;
  $("source").value = state.sources[name] ?? p.text;
  $("compile-errors").replaceChildren();
}

function clearResults() {
  for (const id of ["findings", "messages", "compile-errors"]) $(id).replaceChildren();
  for (const id of ["verdict", "diff", "trace", "saved", "mode"]) $(id).textContent = "";
  $("error").hidden = true;
}

function request() {
  let input;
  try {
    input = JSON.parse($("input").value);
  } catch (e) {
    showError(`the input is not JSON: ${e.message}`);
    return null;
  }
  const policy = $("policy").value;
  const p = state.policies.find((p) => p.name === policy);
  const source = $("source").value === p.text ? "" : $("source").value;
  const body = { input, policy, source, explain: $("explain").value };
  if (state.record >= 0) body.record = state.record;
  return body;
}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = false;
}

function showCompileErrors(errs) {
  const ul = $("compile-errors");
  ul.replaceChildren();
  for (const e of errs) {
    const li = el("li", { "data-line": String(e.line || 0) }, `${e.file || "policy"}:${e.line || "?"}${e.column ? ":" + e.column : ""}: ${e.message}`);
    li.addEventListener("click", () => gotoLine(e.line));
    ul.append(li);
  }
  $("verdict").replaceChildren(el("span", { class: "badge error" }, "does not compile"));
}

function gotoLine(line) {
  const ta = $("source");
  const lines = ta.value.split("\n");
  let start = 0;
  for (let i = 0; i < Math.max(0, line - 1) && i < lines.length; i++) start += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

async function evaluate() {
  clearResults();
  const body = request();
  if (!body) return;
  $("status").textContent = "evaluating…";
  const { status, data } = await api("/api/evaluate", body);
  $("status").textContent = "";
  if (status !== 200) return showError(data.error || `HTTP ${status}`);
  if (data.compileErrors) return showCompileErrors(data.compileErrors);
  if (data.error) showError(data.error);
  const decision = data.decision || "error";
  $("verdict").replaceChildren(el("span", { class: `badge ${decision}`, id: "decision" }, decision), " ", data.message ? data.message.split("\n")[0] : "");
  $("findings-policy").textContent = body.policy;
  $("mode").textContent = data.mode ? `(mode ${data.mode})` : "";
  const findings = $("findings");
  if (data.findings.length === 0) findings.append(el("li", { class: "none" }, "no findings"));
  for (const f of data.findings) findings.append(el("li", {}, f));
  for (const v of data.violations || []) {
    const kind = v.denied ? "deny" : "warn";
    $("messages").append(el("li", { class: kind }, `${kind.toUpperCase()} ${v.policy}: ${v.message}`));
  }
  renderDiff(data.diff);
  $("trace").textContent = (data.trace || []).join("\n");
}

function renderDiff(d) {
  const box = $("diff");
  box.replaceChildren();
  if (!d) {
    box.append(el("p", {}, "no recorded verdict to compare with (a manifest object, or an edited input)"));
    return;
  }
  const head = el("p", { id: "diff-summary" },
    d.same ? "unchanged: " : "changed: ",
    el("span", { class: `badge ${d.before}` }, d.before), " → ", el("span", { class: `badge ${d.after}` }, d.after));
  const ul = el("ul", {});
  for (const m of d.added) ul.append(el("li", { class: "added" }, "+ " + m));
  for (const m of d.removed) ul.append(el("li", { class: "removed" }, "− " + m));
  box.append(head, ul);
}

async function save() {
  const body = request();
  if (!body) return;
  body.name = $("test-name").value;
  const { status, data } = await api("/api/save", body);
  if (status === 422) return showCompileErrors(data.compileErrors);
  if (status !== 200) return showError(data.error || `HTTP ${status}`);
  $("saved").textContent = `wrote ${data.test} to ${data.file}`;
}

async function main() {
  const { data } = await api("/api/state");
  state.records = data.records;
  state.policies = data.policies;
  for (const p of state.policies) $("policy").append(el("option", { value: p.name }, p.name));
  $("policy").addEventListener("change", () => { selectPolicy($("policy").value); clearResults(); });
  $("evaluate").addEventListener("click", evaluate);
  $("save").addEventListener("click", save);
  renderRecords();
  selectPolicy(data.selected);
  if (state.records.length > 0) choose(0);
  document.body.dataset.ready = "true";
}

main();
