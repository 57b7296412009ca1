// The bank operations panel: a view of the admin API (/admin/api). Everything shown comes from
// the API; every change is a request carrying the session's CSRF token. The session cookie is
// HttpOnly: this script never sees it. The CSRF token lives in memory only (not in storage).
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/admin/api";
let csrf = "";
let role = "";
let me = "";
const ROLES = ["viewer", "operator", "admin"];
let maintenance = false;

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function money(cents) {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}$${dollars}.${String(abs % 100).padStart(2, "0")}`;
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "-";
}

function notice(text, error = false) {
  $("notice").textContent = text;
  $("notice").className = error ? "notice error" : "notice";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
  if (response.status === 401 && path !== "/login") {
    showLogin(data.error || "log in first");
    throw new ApiError(401, data.error);
  }
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

// An action button: runs the change, says what happened, redraws the page.
function action(label, method, path, { body, cls = "", done } = {}) {
  const button = el("button", label, { type: "button", class: `small act ${cls}`.trim() });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api(method, path, typeof body === "function" ? body() : body);
      notice(done ? done(result) : `${label}: done`);
      await route();
    } catch (error) {
      if (error.status !== 401) notice(`${label}: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function row(cells) {
  const tr = el("tr");
  for (const cell of cells) {
    const td = el("td");
    if (cell instanceof Node) td.append(cell);
    else if (Array.isArray(cell)) td.append(...cell);
    else if (cell && typeof cell === "object") {
      td.textContent = cell.text;
      if (cell.cls) td.className = cell.cls;
    } else td.textContent = cell ?? "";
    tr.append(td);
  }
  return tr;
}

function fill(tableId, rows) {
  $(tableId).querySelector("tbody").replaceChildren(...rows);
}

// -- pages ------------------------------------------------------------------------------------
async function dashboard() {
  const d = await api("GET", "/dashboard");
  $("fig-customers").textContent = d.customers;
  $("fig-accounts").textContent = `${d.accounts.total} (${Object.entries(d.accounts.by_kind).map(([k, n]) => `${n} ${k}`).join(", ")})`;
  $("fig-balance").textContent = money(d.total_balance_cents);
  $("fig-requests").textContent = `${d.transactions}, ${d.declines} declined`;
  $("fig-terminals").textContent = `${d.terminals.in_service} in service, ${d.terminals.out_of_service} out`;
  fill("hourly", d.hourly.map((h) => row([h.hour.replace("T", " ") + ":00", h.transactions, h.declines,
    Object.entries(h.by_code).map(([c, n]) => `${c}: ${n}`).join("  ")])));
  fill("dispensed", d.cash_dispensed.map((t) => row([t.terminal, { text: money(t.cents), cls: "money" }])));
  setMaintenance(d.maintenance);
}

async function customers() {
  const { customers } = await api("GET", "/customers");
  fill("customers", customers.map((c) => row([
    c.id, c.name, { text: c.active ? "active" : "deactivated", cls: c.active ? "" : "state-deactivated" },
    c.accounts.join(", "), c.cards.join(", "),
    [
      action("Rename", "PATCH", `/customers/${c.id}`, {
        body: () => ({ name: prompt(`New name for ${c.name}`, c.name) || c.name }),
        done: (r) => `customer ${r.id} is now ${r.name}`,
      }),
      c.active
        ? action("Deactivate", "POST", `/customers/${c.id}/deactivate`, { cls: "danger" })
        : action("Reactivate", "POST", `/customers/${c.id}/reactivate`),
    ],
  ])));
}

async function accounts() {
  const { accounts } = await api("GET", "/accounts");
  fill("accounts", accounts.map((a) => {
    const acts = [];
    if (a.status === "open") acts.push(action("Freeze", "POST", `/accounts/${a.number}/freeze`, { cls: "danger", done: () => `account ${a.number} frozen` }));
    if (a.status === "frozen") acts.push(action("Unfreeze", "POST", `/accounts/${a.number}/unfreeze`, { done: () => `account ${a.number} unfrozen` }));
    if (a.status !== "closed") acts.push(action("Close", "POST", `/accounts/${a.number}/close`, { done: () => `account ${a.number} closed` }));
    const tr = row([a.number, a.kind, `${a.customer} (${a.customer_id})`, { text: a.status, cls: `state-${a.status}` },
      { text: money(a.balance_cents), cls: "money" }, { text: money(a.available_cents), cls: "money" }, acts]);
    tr.dataset.account = a.number;
    return tr;
  }));
}

async function cards() {
  const { cards } = await api("GET", "/cards");
  fill("cards", cards.map((c) => {
    const acts = [];
    if (c.status === "active") {
      acts.push(action("Block", "POST", `/cards/${c.id}/block`));
      acts.push(action("Lost", "POST", `/cards/${c.id}/report-lost`, { cls: "danger" }));
      acts.push(action("Stolen", "POST", `/cards/${c.id}/report-stolen`, { cls: "danger" }));
      acts.push(action("Reset PIN", "POST", `/cards/${c.id}/reset-pin`, {
        body: () => ({ pin: prompt(`New PIN for ${c.masked_pan} (the customer changes it at first use)`) || "" }),
        done: () => `PIN of ${c.masked_pan} reset: changed at the next use`,
      }));
    }
    if (c.status !== "replaced") {
      acts.push(action("Replace", "POST", `/cards/${c.id}/replace`, { done: (r) => `new card ${r.pan} for ${c.customer}` }));
    }
    const flags = [c.status, c.pin_change_required ? "PIN change due" : "", c.locked_until ? `locked until ${when(c.locked_until)}` : ""];
    return row([c.masked_pan, `${c.customer} (${c.customer_id})`, { text: flags.filter(Boolean).join(", "), cls: `state-${c.status}` },
      c.expiry, c.accounts.map((a) => a.number).join(", "), acts]);
  }));
}

async function terminals() {
  const data = await api("GET", "/terminals");
  setMaintenance(data.maintenance);
  fill("terminals", data.terminals.map((t) => row([
    t.terminal_id,
    { text: (t.in_service ? "in service" : "OUT OF SERVICE") + (t.key_change_due ? ", key change due" : ""), cls: t.in_service ? "" : "state-out" },
    when(t.last_sign_on_at),
    t.key_scheme ? `scheme ${t.key_scheme}, TPK ${t.tpk_kcv || "-"}, TAK ${t.tak_kcv || "-"}` : "-",
    `${when(t.last_message_at)} ${t.last_message}`,
    [
      t.in_service
        ? action("Out of service", "POST", `/terminals/${t.terminal_id}/out-of-service`, { cls: "danger" })
        : action("In service", "POST", `/terminals/${t.terminal_id}/in-service`),
      action("Key change", "POST", `/terminals/${t.terminal_id}/key-change`, { cls: "admin-only" }),
    ],
  ])));
}

function auditQuery() {
  const query = new URLSearchParams();
  for (const name of ["action", "actor", "subject", "since", "until"]) {
    const value = $(`audit-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  return query.toString();
}

async function audit() {
  const query = auditQuery();
  $("audit-csv").href = `${API}/audit.csv${query ? "?" + query : ""}`;
  const { rows } = await api("GET", `/audit${query ? "?" + query : ""}`);
  const change = (r) => (r.before || r.after)
    ? `${r.before ? JSON.stringify(r.before) : "-"} → ${r.after ? JSON.stringify(r.after) : "-"}` : "";
  fill("audit", rows.slice().reverse().map((r) => row([when(r.at), `${r.actor} (${r.role})`, r.source, r.action, r.subject, change(r)])));
}

async function snapshots() {
  $("export").onclick = () => {
    const pins = $("export-pins").checked ? "?pin_hashes=1" : "";
    window.location.assign(`${API}/snapshot${pins}`);
  };
}

async function operators() {
  if (role !== "admin") return;
  const data = await api("GET", "/operators");
  const others = data.operators.filter((o) => o.name !== me);
  const chosen = $("reset-name").value;
  $("reset-name").replaceChildren(...others.map((o) => el("option", o.name)));
  if (others.some((o) => o.name === chosen)) $("reset-name").value = chosen;
  fill("operators", data.operators.map((o) => {
    const path = `/operators/${encodeURIComponent(o.name)}`;
    const state = [o.active ? "active" : "deactivated", o.password_change_required ? "password change due" : "",
      o.locked_until ? `locked until ${when(o.locked_until)}` : ""].filter(Boolean).join(", ");
    let acts = ["(you)"];
    if (o.name !== me) {
      const select = el("select", null, { "aria-label": `role of ${o.name}` });
      select.append(...ROLES.map((r) => el("option", r)));
      select.value = o.role;
      acts = [
        select,
        action("Set role", "POST", `${path}/role`, { body: () => ({ role: select.value }), done: (r) => `operator ${r.name} is now ${r.role}` }),
        o.active
          ? action("Deactivate", "POST", `${path}/deactivate`, { cls: "danger", done: (r) => `operator ${r.name} deactivated` })
          : action("Reactivate", "POST", `${path}/reactivate`, { done: (r) => `operator ${r.name} reactivated` }),
      ];
    }
    const tr = row([o.name, o.role, { text: state, cls: o.active ? "" : "state-deactivated" }, when(o.last_login_at), acts]);
    tr.dataset.operator = o.name;
    return tr;
  }));
}

const PAGES = { dashboard, customers, accounts, cards, terminals, audit, snapshots, operators };

async function route() {
  const name = (location.hash || "#dashboard").slice(1);
  const page = PAGES[name] ? name : "dashboard";
  for (const key of Object.keys(PAGES)) $(`page-${key}`).hidden = key !== page;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    await PAGES[page]();
  } catch (error) {
    if (error.status !== 401) notice(error.message, true);
  }
}

function setMaintenance(on) {
  maintenance = on;
  $("maintenance-flag").textContent = on ? "MAINTENANCE MODE: every request is declined" : "";
  $("maintenance-toggle").textContent = on ? "Maintenance off" : "Maintenance on";
}

// -- session ----------------------------------------------------------------------------------
function showLogin(message = "") {
  csrf = "";
  $("app").hidden = true;
  $("password-page").hidden = true;
  $("logout").hidden = true;
  $("change-password").hidden = true;
  $("who").textContent = "";
  $("login-page").hidden = false;
  $("login-error").textContent = message === "log in first" ? "" : message;
  $("login-name").focus();
}

function showApp(session) {
  csrf = session.csrf_token;
  role = session.operator.role;
  me = session.operator.name;
  document.body.className = `role-${role}`;
  $("who").textContent = `${me} (${role})`;
  $("login-page").hidden = true;
  $("logout").hidden = false;
  if (session.password_change_required) {
    showPassword("An administrator set your password: choose your own to go on.", true);
    return;
  }
  $("password-page").hidden = true;
  $("change-password").hidden = false;
  $("app").hidden = false;
  route();
}

// The own-password form: required after an admin set the password (no way round it), or
// chosen from the header.
function showPassword(reason, due) {
  $("app").hidden = true;
  $("change-password").hidden = true;
  $("password-page").hidden = false;
  $("password-reason").textContent = reason;
  $("password-cancel").hidden = due;
  $("password-error").textContent = "";
  $("password-current").focus();
}

async function changePassword(event) {
  event.preventDefault();
  const fields = ["password-current", "password-new", "password-again"].map((id) => $(id));
  if (fields[1].value !== fields[2].value) {
    $("password-error").textContent = "the two new passwords differ";
    return;
  }
  try {
    await api("POST", "/password", { current: fields[0].value, new: fields[1].value });
    for (const field of fields) field.value = "";
    showApp(await api("GET", "/session"));
    notice("your password is changed");
  } catch (error) {
    if (error.status !== 401) $("password-error").textContent = error.message;
  }
}

async function boot() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await api("POST", "/login", { name: $("login-name").value, password: $("login-password").value });
      $("login-password").value = "";
      showApp(session);
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });
  $("password-form").addEventListener("submit", changePassword);
  $("change-password").addEventListener("click", () => showPassword("", false));
  $("password-cancel").addEventListener("click", async () => showApp(await api("GET", "/session")));
  $("operator-form").addEventListener("submit", (event) => submit(event, "POST", "/operators",
    () => ({ name: $("operator-name").value.trim(), role: $("operator-role").value, password: $("operator-password").value }),
    (r) => `operator ${r.name} created (${r.role}): they change the password at first login`,
    () => { $("operator-name").value = ""; $("operator-password").value = ""; }));
  $("reset-form").addEventListener("submit", (event) => submit(event, "POST",
    `/operators/${encodeURIComponent($("reset-name").value)}/reset-password`,
    () => ({ password: $("reset-password").value }),
    (r) => `password of ${r.name} reset: they change it at next login`,
    () => { $("reset-password").value = ""; }));
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/logout", {}); } finally { showLogin(); }
  });
  $("customer-form").addEventListener("submit", (event) => submit(event, "POST", "/customers",
    () => ({ name: $("customer-name").value }), (r) => `customer ${r.id} ${r.name} created`));
  $("account-form").addEventListener("submit", (event) => submit(event, "POST", "/accounts",
    () => ({ customer_id: Number($("account-customer").value), kind: $("account-kind").value }),
    (r) => `account ${r.number} opened`));
  $("card-form").addEventListener("submit", (event) => submit(event, "POST", "/cards",
    () => ({
      customer_id: Number($("card-customer").value),
      accounts: $("card-accounts").value.split(",").map((s) => s.trim()).filter(Boolean),
      pin: $("card-pin").value,
    }), (r) => `card ${r.pan} issued (PIN changed at first use)`, () => { $("card-pin").value = ""; }));
  $("maintenance-toggle").addEventListener("click", () => submit(null, "POST", "/maintenance",
    () => ({ on: !maintenance }), (r) => `maintenance mode ${r.maintenance ? "on" : "off"}`));
  $("audit-form").addEventListener("submit", (event) => { event.preventDefault(); audit(); });
  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("import-file").files[0];
    if (!file) return;
    let snapshot;
    try { snapshot = JSON.parse(await file.text()); } catch { notice(`${file.name} is not JSON`, true); return; }
    await submit(null, "POST", "/snapshot", () => ({ policy: $("import-policy").value, snapshot }), (r) => {
      $("import-report").textContent = JSON.stringify(r, null, 2);
      return `imported ${file.name}: ${r.created.length} created, ${r.replaced.length} replaced, ${r.skipped.length} skipped`;
    });
  });
  window.addEventListener("hashchange", route);
  try {
    showApp(await api("GET", "/session"));
  } catch (error) {
    if (error.status !== 401) showLogin(error.message);
  }
}

async function submit(event, method, path, body, done, after) {
  if (event) event.preventDefault();
  try {
    notice(done(await api(method, path, body())));
    if (after) after();
    await route();
  } catch (error) {
    if (error.status !== 401) notice(error.message, true);
  }
}

boot();
