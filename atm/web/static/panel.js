// The web front panel: a view of the ATM's front-panel model, live over one WebSocket.
// Everything shown comes from the server's snapshots; every action is sent to the server.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let role = "watcher";
let last = null;

function send(action) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(action));
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function renderScreen(screen) {
  $("screen-title").textContent = screen ? screen.title : "";
  const lines = $("screen-lines");
  lines.replaceChildren(...(screen ? screen.lines.map((l) => el("div", l)) : []));
  $("screen-input").textContent = screen && screen.input_label !== null
    ? `${screen.input_label} ${screen.input}` : "";
  $("screen").dataset.screen = screen ? screen.id : "";
  for (const [side, keys] of [["softkeys-left", [1, 2, 3, 4]], ["softkeys-right", [5, 6, 7, 8]]]) {
    $(side).replaceChildren(...keys.map((i) => {
      const key = `F${i}`;
      const label = screen && screen.soft_keys[key] ? screen.soft_keys[key] : "";
      const button = el("button", label ? `${key} ${label}` : key,
        { type: "button", id: `key-${key}`, "data-key": key, "aria-label": label ? `${key}: ${label}` : key });
      return button;
    }));
  }
}

function render(message) {
  const p = message.panel;
  last = p;
  role = message.role;
  $("state").textContent = `state: ${p.state}` + (p.transition ? ` (${p.transition})` : "");
  $("link-status").textContent = `host: ${p.link_status}`;
  $("role").textContent = role === "driver"
    ? `you drive this ATM (${message.tabs} tab${message.tabs > 1 ? "s" : ""} open)`
    : "watching: another tab drives this ATM";
  $("role").className = role;
  renderScreen(p.screen);
  $("card-slot").textContent = p.card_slot;
  $("tray").replaceChildren(...(p.cash_tray.length
    ? [...p.cash_tray.map((n) => el("li", `${n.count} x ${n.note}`)), el("li", `total ${p.cash_tray_total}`)]
    : [el("li", "empty")]));
  $("note-panel").hidden = !p.note_slot.present;
  $("note-slot").textContent = p.note_slot.text;
  $("note-slot").dataset.escrow = p.note_slot.escrow_total;
  $("note-slot").dataset.returned = p.note_slot.returned_total;
  $("envelope-panel").hidden = !p.envelope_slot.present;
  $("envelope-slot").textContent = p.envelope_slot.text;
  $("receipt").textContent = p.receipt.join("\n");
  renderReceiptQr(p.receipt_qr, p.receipt_qr_svg);
  $("devices").replaceChildren(...Object.entries(p.devices).map(([kind, d]) =>
    el("li", `${kind} (${d.where}): ${d.summary || "ok"}` + (d.faults.length ? ` — faults ${d.faults.join(" ")}` : ""))));
  $("counters").textContent = p.counters.join("\n");
  $("journal").textContent = p.journal.join("\n");
  $("notices").replaceChildren(...p.notices.map((n) => el("p", n.text, { class: n.error ? "notice error" : "notice" })));
  const log = $("link-log");
  log.replaceChildren(...p.link_log.map((e) => {
    const item = el("li");
    item.append(el("div", `${e.at} ${e.summary}`), el("pre", e.text));
    return item;
  }));
  $("fault-panel").hidden = !p.faults_enabled;
  if (p.faults_enabled) renderFaultChoices(p.devices);
  $("host-toggle").hidden = !p.host_controls;
  $("host-toggle").textContent = p.host_down ? "Start the host" : "Stop the host";
  $("supervisor").textContent = p.supervisor ? "Supervisor switch (on: turn off)" : "Supervisor switch (off: turn on)";
  for (const button of document.querySelectorAll("button")) button.disabled = role !== "driver";
}

// The receipt's QR code, drawn by the server as SVG; replaced only when the reference changes.
function renderReceiptQr(text, svg) {
  const figure = $("receipt-qr");
  figure.hidden = !text;
  if (figure.dataset.text === text) return;
  figure.dataset.text = text;
  const code = $("receipt-qr-code");
  if (text) {
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    code.replaceChildren(document.importNode(doc.documentElement, true));
  } else {
    code.replaceChildren();
  }
  $("receipt-qr-text").textContent = text ? `QR: ${text}` : "";
}

function renderFaultChoices(devices) {
  const deviceSelect = $("fault-device");
  const chosen = deviceSelect.value;
  const kinds = Object.keys(devices).filter((k) => devices[k].fault_names.length);
  if (deviceSelect.options.length !== kinds.length) {
    deviceSelect.replaceChildren(...kinds.map((k) => el("option", k, { value: k })));
    if (chosen) deviceSelect.value = chosen;
  }
  const names = devices[deviceSelect.value] ? devices[deviceSelect.value].fault_names : [];
  const faultSelect = $("fault-name");
  if ([...faultSelect.options].map((o) => o.value).join() !== names.join()) {
    faultSelect.replaceChildren(...names.map((n) => el("option", n, { value: n })));
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "state") render(message);
    else if (message.type === "error") {
      $("notices").prepend(el("p", message.text, { class: "notice error", role: "alert" }));
    }
  };
  socket.onclose = () => {
    $("state").textContent = "disconnected: reconnecting…";
    setTimeout(connect, 1000);
  };
}

async function loadConfig() {
  const config = await (await fetch("/config")).json();
  $("terminal").textContent = `ATM ${config.terminal}`;
  $("card-pick").replaceChildren(...Object.entries(config.cards).map(([name, label]) =>
    el("option", label, { value: name })));
  $("note-buttons").replaceChildren(...Object.entries(config.notes).map(([cents, label]) =>
    el("button", label, { type: "button", id: `note-${cents}`, "data-note": cents, "aria-label": `insert a ${label} note` })));
  // The supervisor's keypad, as the controller has it (digits aside): F1-F8 and ENTER.
  $("operator-keys").replaceChildren(...Object.entries(config.supervisor_keys).map(([key, label]) =>
    el("button", `${key} ${label}`, { type: "button", id: `sup-${key}`, "data-key": key })));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  // After a mouse or touch press the keyboard goes back to the PIN pad (Enter is ENTER, not
  // this button again); a button reached with Tab keeps its focus and Enter presses it.
  if (event.detail > 0) button.blur();
  if (button.dataset.key) return send({ action: "press", key: button.dataset.key });
  if (button.dataset.note) return send({ action: "insert_note", cents: Number(button.dataset.note) });
  switch (button.id) {
    case "insert-card": return send({ action: "insert", card: $("card-pick").value });
    case "insert-pan": return send({ action: "insert_pan", pan: $("pan").value, expiry: $("expiry").value });
    case "take-card": return send({ action: "take_card" });
    case "take-cash": return send({ action: "take_cash" });
    case "take-notes": return send({ action: "take_notes" });
    case "insert-envelope": return send({ action: "insert_envelope" });
    case "supervisor": return send({ action: "supervisor" });
    case "replenish": return send({ action: "replenish" });
    case "inject": return send({ action: "inject", device: $("fault-device").value, fault: $("fault-name").value, arg: $("fault-arg").value });
    case "clear": return send({ action: "clear", device: $("fault-device").value });
    case "host-toggle": return send({ action: last && last.host_down ? "host_up" : "host_down" });
  }
});

document.addEventListener("change", (event) => {
  if (event.target.id === "fault-device" && last) renderFaultChoices(last.devices);
});

// The keyboard is the PIN pad, unless the person is typing in a form field.
document.addEventListener("keydown", (event) => {
  const field = event.target.closest("input, select, textarea");
  if (field || event.altKey || event.ctrlKey || event.metaKey) return;
  let key = null;
  if (/^[0-9]$/.test(event.key)) key = event.key;
  else if (event.key === "Enter" && !event.target.closest("button, summary")) key = "ENTER";
  else if (event.key === "Backspace") key = "CLEAR";
  else if (event.key === "Escape") key = "CANCEL";
  else if (/^F[1-8]$/.test(event.key)) key = event.key;
  if (key) {
    event.preventDefault();
    send({ action: "press", key });
  }
});

loadConfig().then(connect);
