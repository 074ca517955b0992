// The pubfn console: a tenant admin's view of its endpoints, tokens and logs, on the admin API.
import { attachEditor } from "./highlight.js";

const $ = (id) => document.getElementById(id);
const STARTER = `def handler():\n    name = request.args.get("name", "world")\n    return {"hello": name}\n`;
const state = { token: sessionStorage.getItem("pubfn-token"), tenant: null, endpoint: null };
const editor = attachEditor($("code"), $("code-view"));

/** The tenant a token was issued for (its `aud` claim); the server checks the rest. */
function tenantOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).aud || null;
  } catch { return null; }
}

async function api(method, path, body) {
  const response = await fetch(`/admin/v1/tenants/${encodeURIComponent(state.tenant)}${path}`, {
    method,
    headers: { authorization: `Bearer ${state.token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const where = data && data.line ? ` (line ${data.line}, column ${data.column})` : "";
    throw new Error(`${response.status}: ${(data && data.detail) || response.statusText}${where}`);
  }
  return data;
}

function say(message, ok = true) {
  $("status").textContent = message;
  $("status").className = ok ? "ok" : "error";
}

function item(text, ...children) {
  const li = document.createElement("li");
  li.append(text, ...children);
  return li;
}

function button(label, onClick, attrs = {}) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.className = "secondary";
  Object.entries(attrs).forEach(([k, v]) => b.setAttribute(k, v));
  b.addEventListener("click", onClick);
  return b;
}

async function signIn(token) {
  const tenant = tenantOf(token);
  if (!tenant) throw new Error("that is not a pubfn token");
  Object.assign(state, { token, tenant });
  await api("GET", "");
  sessionStorage.setItem("pubfn-token", token);
  $("tenant-name").textContent = `tenant ${tenant}`;
  $("sign-in-view").hidden = true;
  $("app-view").hidden = false;
  $("sign-out").hidden = false;
  newEndpoint();
  await Promise.all([loadEndpoints(), loadTokens()]);
}

async function loadEndpoints() {
  const endpoints = await api("GET", "/endpoints");
  $("endpoints").replaceChildren(...endpoints.map((e) => {
    const li = item(`${e.current.method} ${e.current.route} — ${e.name}`);
    li.dataset.name = e.name;
    if (e.name === state.endpoint) li.className = "selected";
    li.addEventListener("click", () => openEndpoint(e.name));
    return li;
  }));
}

function newEndpoint() {
  state.endpoint = null;
  $("ep-name").value = ""; $("ep-route").value = ""; $("ep-name").disabled = false;
  editor.set(STARTER);
  $("versions").replaceChildren(); $("logs").replaceChildren();
  say("new endpoint: name it, give it a route, then Run or Deploy");
}

async function openEndpoint(name) {
  const endpoint = await api("GET", `/endpoints/${encodeURIComponent(name)}`);
  state.endpoint = name;
  $("ep-name").value = name; $("ep-name").disabled = true;
  $("ep-method").value = endpoint.current.method;
  $("ep-route").value = endpoint.current.route;
  $("ep-isolation").value = endpoint.current.isolation;
  $("ep-auth").value = endpoint.current.auth;
  editor.set(endpoint.script || "");
  $("try-path").value = endpoint.current.route;
  $("try-method").value = endpoint.current.method;
  say(`version ${endpoint.current.version}, deployed ${endpoint.current.deployed_at}`);
  await Promise.all([loadEndpoints(), loadVersions(), loadLogs()]);
}

async function loadVersions() {
  if (!state.endpoint) return;
  const versions = await api("GET", `/endpoints/${encodeURIComponent(state.endpoint)}/versions`);
  $("versions").replaceChildren(...versions.map((v) => item(
    `v${v.version} ${v.method} ${v.route} (${v.deployed_at}) `,
    button("Roll back to this", () => rollback(v.version), { "data-version": v.version }),
  )));
}

async function rollback(version) {
  const endpoint = await api("POST", `/endpoints/${encodeURIComponent(state.endpoint)}/rollback`, { version });
  await openEndpoint(state.endpoint);
  say(`serving version ${endpoint.current.version} again`);
}

async function deploy() {
  const name = $("ep-name").value.trim();
  if (!name) return say("give the endpoint a name", false);
  const spec = { method: $("ep-method").value, route: $("ep-route").value.trim(), script: editor.get(),
                 isolation: $("ep-isolation").value, auth: $("ep-auth").value };
  const deployed = await api("PUT", `/endpoints/${encodeURIComponent(name)}`, spec);
  await openEndpoint(name);
  say(`deployed version ${deployed.version.version}`);
}

function parseHeaders(text) {
  if (!text.trim()) return {};
  const headers = JSON.parse(text);
  if (typeof headers !== "object" || Array.isArray(headers)) throw new Error("headers: a JSON object");
  return headers;
}

async function run() {
  const request = { method: $("sample-method").value, path: $("sample-path").value || "/",
                    query: $("sample-query").value, headers: parseHeaders($("sample-headers").value),
                    body: $("sample-body").value };
  $("run-result").textContent = "running...";
  const result = await api("POST", "/run", { script: editor.get(), request });
  const lines = [];
  if (result.error) {
    lines.push(`error: ${result.error.message}`);
    if (result.error.traceback) lines.push(result.error.traceback);
  } else {
    lines.push(`${result.status}`, ...result.headers.map(([k, v]) => `${k}: ${v}`), "", result.body ?? `(binary) ${result.body_base64}`);
  }
  if (result.output) lines.push("", "--- output ---", result.output);
  lines.push("", `${result.duration_ms.toFixed(1)} ms`);
  $("run-result").textContent = lines.join("\n");
}

async function loadTokens() {
  const tokens = await api("GET", "/tokens");
  $("tokens").replaceChildren(...tokens.filter((t) => !t.revoked_at).map((t) => item(
    `${t.name}${t.admin ? " (admin)" : ""} `,
    button("Revoke", async () => { await api("DELETE", `/tokens/${t.jti}`); await loadTokens(); }, { "data-jti": t.jti }),
  )));
}

async function createToken() {
  const issued = await api("POST", "/tokens", { name: $("token-name").value.trim() });
  $("new-token").value = issued.token;
  $("new-token-box").hidden = false;
  $("try-token").value = issued.token;
  $("token-name").value = "";
  await loadTokens();
}

/** Calls the endpoint through the admin API, which sends the request to the data plane: the
 * console's origin never loads a tenant's response, and needs no access to the tenant's. */
async function tryEndpoint() {
  const headers = {};
  if ($("try-token").value) headers.authorization = `Bearer ${$("try-token").value}`;
  const method = $("try-method").value;
  const typed = $("try-path").value.startsWith("/") ? $("try-path").value : `/${$("try-path").value}`;
  const [path, ...query] = typed.split("?");
  const request = { method, path, query: query.join("?"), headers };
  if (!["GET", "HEAD"].includes(method)) request.body = $("try-body").value;
  const reply = await api("POST", "/try", { request });
  const lines = [`${reply.status}`];
  for (const [name, value] of reply.headers) lines.push(`${name}: ${value}`);
  lines.push("", reply.body ?? `(binary, base64) ${reply.body_base64}`);
  $("try-response").textContent = lines.join("\n");
}

/** The statuses whose calls the server records for `pubfn replay` (app/replay.rs). */
const REPLAYED_STATUSES = [500, 502, 504];

/** Shows how to replay a failed call on one's own machine, and offers its recording. */
async function showReplay(requestId, panel) {
  panel.hidden = false;
  let recording;
  try {
    recording = await api("GET", `/replays/${encodeURIComponent(requestId)}`);
  } catch (error) {
    panel.textContent = `No recording of this call: ${error.message}`;
    return;
  }
  const command = `pubfn replay --tenant ${state.tenant} ${requestId}`;
  panel.textContent = [
    "Replay this call on your machine, with the request, rows, state and HTTP answers it got:",
    `  ${command}`,
    "Try a fix on the same inputs:",
    `  ${command} --script fixed.py`,
    "",
    `${recording.calls.length} recorded capability call(s); ${recording.error ?? ""}`,
  ].join("\n");
  const blob = new Blob([JSON.stringify(recording, null, 1)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob), download: `replay-${requestId}.json`, textContent: "Download the recording",
  });
  panel.append("\n", link, ` (then: ${command} --recording replay-${requestId}.json)`);
}

async function loadLogs() {
  if (!state.endpoint) return;
  const logs = await api("GET", `/endpoints/${encodeURIComponent(state.endpoint)}/logs?limit=50`);
  $("logs").replaceChildren(...logs.map((entry) => {
    const li = item(`${entry.created_at ?? ""} ${entry.method} ${entry.path} → ${entry.status} in ${entry.duration_ms.toFixed(1)} ms [${entry.request_id}] v${entry.version}`);
    if (entry.error) li.classList.add("log-error");
    if (REPLAYED_STATUSES.includes(entry.status)) {
      const panel = Object.assign(document.createElement("pre"), { className: "output replay", hidden: true });
      li.append(" ", button("Replay", guarded(() => showReplay(entry.request_id, panel)), { class: "secondary replay" }), panel);
    }
    const detail = [entry.error, entry.traceback, entry.output].filter(Boolean).join("\n");
    if (detail) {
      const more = document.createElement("details");
      const pre = document.createElement("pre");
      pre.className = "output"; pre.textContent = detail;
      more.append(Object.assign(document.createElement("summary"), { textContent: "details" }), pre);
      li.append(more);
    }
    return li;
  }));
}

/** Wraps a handler so that its failure shows in the status line instead of vanishing. */
const guarded = (f) => async (event) => {
  event?.preventDefault?.();
  try { await f(event); } catch (error) { say(error.message, false); }
};

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try { await signIn($("token").value.trim()); $("sign-in-error").textContent = ""; }
  catch (error) { $("sign-in-error").textContent = error.message; }
});
$("sign-out").addEventListener("click", () => { sessionStorage.removeItem("pubfn-token"); location.reload(); });
$("new-endpoint").addEventListener("click", guarded(newEndpoint));
$("deploy").addEventListener("click", guarded(deploy));
$("run").addEventListener("click", guarded(run));
$("token-form").addEventListener("submit", guarded(createToken));
$("copy-token").addEventListener("click", guarded(() => navigator.clipboard.writeText($("new-token").value)));
$("try-send").addEventListener("click", guarded(tryEndpoint));
$("logs-refresh").addEventListener("click", guarded(loadLogs));
if (state.token) signIn(state.token).catch(() => sessionStorage.removeItem("pubfn-token"));
