// kjobs monitor: a client of the REST API and of the live event stream, nothing more.
// The rules (which action is allowed from which status, status colours) come from the
// server in #kjobs-config, rendered from engine/core/states.py: none are re-encoded here.
"use strict";

const CONFIG = JSON.parse(document.getElementById("kjobs-config").textContent);
const RULES = CONFIG.rules;
const API = "/kylin/api";
const POLL_MS = 5000; // fallback while the live stream is down
const STREAM_POLL_MS = 3000;
const ACTIONS = [
  ["resume", "Resume", "M5 3.5v9l7.5-4.5z"],
  ["pause", "Pause", "M6 4v8M10 4v8"],
  ["discard", "Discard", "M4.2 4.2l7.6 7.6M11.8 4.2l-7.6 7.6"],
  ["drop", "Drop", "M3.5 4.8h9M6.3 4.8V3.4h3.4v1.4M4.8 4.8l.6 8h5.2l.6-8"],
];
const ROLLBACK_ICON = "M4 6.5h5.5a3 3 0 010 6H6M4 6.5l2.5-2.5M4 6.5L6.5 9";
const STREAM_ACTIONS = [["START", "Start"], ["STOP", "Stop"], ["FORCE_STOP", "Force stop"], ["RESTART", "Restart"]];
const CONFIRM_TEXT = {
  discard: ["Discard this job?", "Every step that has not ended is discarded and a running step is interrupted at once. This cannot be undone.", "Discard"],
  drop: ["Drop this job?", "The job, its steps and all their output are deleted for good.", "Drop"],
};

const state = {
  tab: "jobs",
  statuses: new Set(),
  cube: "",
  project: "",
  timeFilter: "2",
  offset: 0,
  limit: 30,
  jobs: [],
  hasMore: false,
  selected: null, // job id
  job: null, // the selected job's JSON
  step: null, // selected step id
  stepPinned: false, // the user chose the step (else: follow the running one)
  streamSelected: null,
  streamJobs: [],
  skew: 0, // server clock - browser clock, ms
  live: false,
};

// -- small helpers ------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.setAttribute("style", value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svgIcon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", path);
  p.setAttribute("fill", path.includes("z") ? "currentColor" : "none");
  p.setAttribute("stroke", "currentColor");
  p.setAttribute("stroke-width", "1.6");
  p.setAttribute("stroke-linecap", "round");
  p.setAttribute("stroke-linejoin", "round");
  svg.append(p);
  return svg;
}
const color = (status) => RULES.colors[status] || "#9aa0a6";
const now = () => Date.now() + state.skew;
function badge(status) {
  return el("span", { class: `badge s-${status}`, style: `--c:${color(status)}` }, status);
}
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "–";
  seconds = Math.floor(seconds);
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60), s = seconds % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}
function fmtTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const today = new Date(now()).toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return today ? time : `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}
function fmtAgo(ms) {
  if (!ms) return "–";
  const s = Math.max(0, Math.round((now() - ms) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return fmtTime(ms);
}
function jobSeconds(job) {
  if (!job.exec_start_time) return 0;
  const end = job.exec_end_time || now();
  return Math.max(0, Math.floor((end - job.exec_start_time - job.exec_interrupt_time) / 1000));
}
function cubeOf(job) { return job.display_cube_name || job.related_cube; }
function buildTypeOf(job) { return (job.name || "").split(" ")[0]; }
function allowed(action, status) { return (RULES.allowed[action] || []).includes(status); }

function toast(message, kind = "info") {
  const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 9000 : 3500);
}

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
    ...options,
  });
  const date = response.headers.get("date");
  if (date) state.skew = Math.abs(new Date(date).getTime() - Date.now()) > 2000 ? new Date(date).getTime() - Date.now() : 0;
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const message = (body && (body.msg || body.exception)) || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

// Coalesce bursts of events into one refresh per kind, at most every `wait` ms.
function throttled(fn, wait) {
  let timer = null, again = false, running = false;
  const run = async () => {
    timer = null;
    if (running) { again = true; return; }
    running = true;
    try { await fn(); } catch (err) { console.warn(err); }
    running = false;
    if (again) { again = false; schedule(); }
  };
  const schedule = () => { if (!timer) timer = setTimeout(run, wait); };
  schedule.now = run;
  return schedule;
}

// -- URL state ------------------------------------------------------------------------------

function readHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(query);
  state.tab = path === "streaming" ? "streaming" : "jobs";
  state.statuses = new Set((params.get("status") || "").split(",").filter((s) => RULES.statuses.includes(s)));
  state.cube = params.get("cube") || "";
  state.project = params.get("project") || "";
  state.timeFilter = params.get("time") || "2";
  state.offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  state.limit = [15, 30, 50, 100].includes(+params.get("limit")) ? +params.get("limit") : 30;
  const job = params.get("job");
  if (job !== state.selected) { state.selected = job; state.job = null; state.step = null; state.stepPinned = false; }
  state.streamSelected = params.get("stream");
}
function writeHash() {
  const params = new URLSearchParams();
  if (state.tab === "jobs") {
    if (state.statuses.size) params.set("status", [...state.statuses].join(","));
    if (state.cube) params.set("cube", state.cube);
    if (state.project) params.set("project", state.project);
    if (state.timeFilter !== "2") params.set("time", state.timeFilter);
    if (state.offset) params.set("offset", state.offset);
    if (state.limit !== 30) params.set("limit", state.limit);
    if (state.selected) params.set("job", state.selected);
  } else if (state.streamSelected) {
    params.set("stream", state.streamSelected);
  }
  const query = params.toString();
  const hash = `#/${state.tab}${query ? "?" + query : ""}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// -- overview and filters -------------------------------------------------------------------

async function loadOverview() {
  const counts = await api("/jobs/overview");
  const box = $("#overview");
  box.replaceChildren(...RULES.statuses.map((status) => el("button", {
    type: "button", class: `card${state.statuses.has(status) ? " on" : ""}`, style: `--c:${color(status)}`,
    "data-overview": status, title: `Show ${status} jobs`,
    onclick: () => { state.statuses = state.statuses.has(status) && state.statuses.size === 1 ? new Set() : new Set([status]); filtersChanged(); },
  }, el("span", { class: "count" }, counts[status] ?? 0), el("span", { class: "label" }, status))));
}

function renderStatusChips() {
  $("#status-filter").replaceChildren(...RULES.statuses.map((status) => el("button", {
    type: "button", class: "chip", style: `--c:${color(status)}`, "aria-pressed": String(state.statuses.has(status)),
    "data-filter-status": status,
    onclick: () => { state.statuses.has(status) ? state.statuses.delete(status) : state.statuses.add(status); filtersChanged(); },
  }, el("span", { class: "sw" }), status)));
}

function filtersChanged() {
  state.offset = 0;
  writeHash();
  renderStatusChips();
  refreshJobs.now();
  refreshOverview.now();
}

async function loadProjects() {
  try {
    const projects = await api("/projects");
    const select = $("#f-project");
    for (const p of projects) select.append(el("option", { value: p.name }, p.name));
    select.value = state.project;
  } catch (err) { console.warn(err); }
}

// -- jobs list ------------------------------------------------------------------------------

async function loadJobs() {
  const params = new URLSearchParams({ offset: state.offset, limit: state.limit + 1, timeFilter: state.timeFilter });
  for (const s of state.statuses) params.append("status", RULES.codes[s]);
  if (state.cube) params.set("cubeName", state.cube);
  if (state.project) params.set("projectName", state.project);
  const jobs = await api(`/jobs?${params}`);
  state.hasMore = jobs.length > state.limit;
  state.jobs = jobs.slice(0, state.limit);
  renderJobs();
}

function actionButtons(job, compact) {
  return ACTIONS.map(([action, label, icon]) => {
    const enabled = allowed(action, job.job_status);
    return el("button", {
      type: "button", class: compact ? "btn icon-btn" : `btn${action === "resume" ? " primary" : ""}`,
      "data-action": action, disabled: !enabled, title: enabled ? `${label} this job` : `${label}: not allowed while ${job.job_status}`,
      "aria-label": `${label} job`,
      onclick: (event) => { event.stopPropagation(); runAction(action, job); },
    }, svgIcon(icon), compact ? null : label);
  });
}

function jobRow(job) {
  const status = job.job_status;
  const progress = Math.round(job.progress);
  return el("tr", {
    "data-job-id": job.uuid, "data-status": status, class: job.uuid === state.selected ? "selected" : "",
    tabindex: "0", onclick: () => selectJob(job.uuid),
    onkeydown: (event) => { if (event.key === "Enter" && event.target === event.currentTarget) selectJob(job.uuid); },
  },
  el("td", { class: "c-name" },
    el("div", { class: "job-cube" }, cubeOf(job)),
    el("div", { class: "job-sub", title: job.name }, `${buildTypeOf(job)} · ${job.related_segment_name} · ${job.projectName}`)),
  el("td", { class: "c-status" }, badge(status)),
  el("td", { class: "c-progress" }, el("div", { class: "progress", style: `--c:${color(status)}` },
    el("div", { class: "track" }, el("div", { class: "fill", style: `width:${progress}%` })),
    el("span", { class: "pct" }, `${progress}%`))),
  el("td", { class: "c-duration", "data-duration": job.uuid }, fmtDuration(jobSeconds(job))),
  el("td", { class: "c-modified", title: fmtTime(job.last_modified) }, fmtAgo(job.last_modified)),
  el("td", { class: "c-actions" }, el("div", { class: "actions" }, actionButtons(job, true))));
}

function renderJobs() {
  const body = $("#jobs-body");
  const before = new Map([...body.children].map((tr) => [tr.dataset.jobId, tr.dataset.status]));
  body.replaceChildren(...state.jobs.map(jobRow));
  for (const tr of body.children) {
    if (before.size && before.get(tr.dataset.jobId) !== tr.dataset.status) tr.classList.add("flash");
  }
  $("#jobs-empty").hidden = state.jobs.length > 0;
  const first = state.jobs.length ? state.offset + 1 : 0;
  $("#page-info").textContent = state.jobs.length ? `${first}–${state.offset + state.jobs.length}` : "";
  $("#page-prev").disabled = state.offset === 0;
  $("#page-next").disabled = !state.hasMore;
}

// -- job detail -----------------------------------------------------------------------------

function selectJob(id) {
  if (state.selected !== id) { state.step = null; state.stepPinned = false; state.job = null; }
  state.selected = id;
  writeHash();
  for (const tr of $("#jobs-body").children) tr.classList.toggle("selected", tr.dataset.jobId === id);
  // narrow windows show the detail below the list: bring it into view
  refreshDetail.now().then(() => { if (window.innerWidth <= 1100) $("#detail").scrollIntoView({ behavior: "smooth", block: "start" }); });
}

function closeDetail() {
  state.selected = null; state.job = null; state.step = null;
  writeHash();
  renderDetail();
  for (const tr of $("#jobs-body").children) tr.classList.remove("selected");
}

async function loadDetail() {
  if (!state.selected) { renderDetail(); return; }
  const id = state.selected;
  try {
    const job = await api(`/jobs/${encodeURIComponent(id)}`);
    if (state.selected !== id) return;
    state.job = job;
  } catch (err) {
    if (err.status === 404) { state.job = null; state.selected = null; writeHash(); }
    else throw err;
  }
  if (state.job && !state.stepPinned) state.step = followedStep(state.job);
  renderDetail();
  if (state.step) refreshOutput.now();
}

// the step worth looking at: the running one, else the failed/paused one, else the last run
function followedStep(job) {
  const steps = job.steps;
  const pick = steps.find((s) => s.step_status === RULES.running)
    || steps.find((s) => RULES.attention.includes(s.step_status))
    || [...steps].reverse().find((s) => s.exec_start_time);
  return pick ? pick.id : null;
}

function renderDetail() {
  const pane = $("#detail");
  const job = state.job;
  $("#split").classList.toggle("open", Boolean(job));
  pane.hidden = !job;
  if (!job) { pane.replaceChildren(); return; }
  const status = job.job_status;
  const alert = pane.querySelector(".alert");
  const head = el("div", { class: "detail-head" },
    el("div", { class: "detail-title" }, badge(status), el("h2", {}, job.name),
      el("button", { type: "button", class: "btn icon-btn", title: "Close", "aria-label": "Close detail", onclick: closeDetail }, svgIcon("M4.2 4.2l7.6 7.6M11.8 4.2l-7.6 7.6"))),
    el("div", { class: "detail-id mono" }, job.uuid),
    el("div", { class: "detail-actions", "data-detail-job": job.uuid }, actionButtons(job, false)));
  const meta = el("dl", { class: "meta" }, ...[
    ["Cube", cubeOf(job)], ["Project", job.projectName], ["Build", buildTypeOf(job)], ["Segment", job.related_segment_name],
    ["Submitter", job.submitter], ["Started", fmtTime(job.exec_start_time)], ["Ended", fmtTime(job.exec_end_time)],
    ["Duration", fmtDuration(jobSeconds(job))], ["MR waiting", fmtDuration(job.mr_waiting)], ["Progress", `${Math.round(job.progress)}%`],
    ["Node", job.build_instance],
  ].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  const old = $("#step-output");
  const scroll = old ? [old.dataset.outputStep, old.scrollTop, old.scrollHeight - old.scrollTop - old.clientHeight < 24] : null;
  pane.replaceChildren(head, ...(alert && alert.dataset.job === job.uuid ? [alert] : []), meta,
    el("div", { class: "section-title" }, `Steps (${job.steps.length})`), gantt(job), stepDetail(job));
  const pre = $("#step-output");
  if (pre && scroll && scroll[0] === pre.dataset.outputStep) pre.scrollTop = scroll[2] ? pre.scrollHeight : scroll[1];
}

function gantt(job) {
  const steps = job.steps;
  const starts = steps.map((s) => s.exec_start_time).filter(Boolean);
  const t0 = job.exec_start_time || Math.min(...starts, now());
  const ends = steps.map((s) => s.exec_end_time || (s.exec_start_time ? now() : 0));
  const t1 = Math.max(job.exec_end_time || 0, ...ends, t0 + 1000);
  const span = t1 - t0;
  const x = (t) => `${Math.max(0, Math.min(100, ((t - t0) / span) * 100))}%`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => el("span", { style: `left:${f * 100}%` },
    f === 0 ? fmtTime(t0) : `+${span < 10_000 ? `${((span * f) / 1000).toFixed(1)}s` : fmtDuration((span * f) / 1000)}`));
  const rows = steps.map((step) => {
    const s = step.step_status;
    const lane = el("div", { class: "lane" });
    if (step.exec_start_time) {
      const end = step.exec_end_time || now();
      const waitMs = (step.exec_wait_time || 0) * 1000;
      if (waitMs > 0) lane.append(el("div", { class: "wait", style: `left:${x(step.exec_start_time)};width:calc(${x(step.exec_start_time + waitMs)} - ${x(step.exec_start_time)})`, title: `waited ${fmtDuration(step.exec_wait_time)} for YARN` }));
      lane.append(el("div", {
        class: `bar s-${s}`, style: `--c:${color(s)};left:${x(step.exec_start_time)};width:calc(${x(end)} - ${x(step.exec_start_time)})`,
        title: `${step.name}\n${s} · ${fmtTime(step.exec_start_time)} → ${step.exec_end_time ? fmtTime(step.exec_end_time) : "now"} (${fmtDuration((end - step.exec_start_time) / 1000)})`,
      }));
    }
    const seconds = step.exec_start_time ? ((step.exec_end_time || now()) - step.exec_start_time) / 1000 : null;
    const rollbackOk = allowed("rollback", job.job_status);
    return el("div", {
      class: `step-row${step.id === state.step ? " selected" : ""}`, "data-step": step.id, "data-step-status": s,
      onclick: () => { state.step = step.id; state.stepPinned = true; renderDetail(); refreshOutput.now(); },
    },
    el("div", { class: "step-label", title: `${step.name} (${step.cmd_type})` },
      el("span", { class: "seq" }, String(step.sequence_id).padStart(2, "0")),
      el("span", { class: "dot", style: `--c:${color(s)}` }), el("span", { class: "name" }, step.name)),
    lane,
    el("div", { class: "step-side" }, seconds === null ? el("span", { class: "muted" }, "–") : fmtDuration(seconds),
      el("button", {
        type: "button", class: "btn icon-btn", "data-action": "rollback", "data-step-id": step.id, disabled: !rollbackOk,
        title: rollbackOk ? `Roll back to "${step.name}": it and every later step run again` : `Rollback: not allowed while ${job.job_status}`,
        "aria-label": `Roll back to step ${step.sequence_id}`,
        onclick: (event) => { event.stopPropagation(); runAction("rollback", job, step); },
      }, svgIcon(ROLLBACK_ICON))));
  });
  return el("div", { class: "gantt" }, el("div", { class: "axis" }, ticks), rows);
}

function stepDetail(job) {
  const step = job.steps.find((s) => s.id === state.step);
  if (!step) return el("div", { class: "step-detail muted", style: "padding:12px" }, "Select a step to see its output.");
  const running = step.step_status === RULES.running;
  const end = step.exec_end_time || (step.exec_start_time ? now() : 0);
  const info = Object.entries(step.info || {});
  const previous = $("#step-output");
  const output = el("pre", { id: "step-output", class: "output", "data-output-step": step.id });
  if (previous && previous.dataset.outputStep === step.id) {
    output.textContent = previous.textContent;
    output.className = previous.className;
  } else {
    output.textContent = "Loading…";
    output.classList.add("empty-output");
  }
  return el("div", { class: "step-detail" },
    el("div", { class: "step-detail-head" }, el("strong", {}, step.name), badge(step.step_status),
      el("span", { class: "mono muted" }, step.cmd_type),
      el("span", {}, `Start ${fmtTime(step.exec_start_time)}`), el("span", {}, `End ${fmtTime(step.exec_end_time)}`),
      el("span", {}, `Duration ${step.exec_start_time ? fmtDuration((end - step.exec_start_time) / 1000) : "–"}`),
      step.exec_wait_time ? el("span", {}, `Waited ${fmtDuration(step.exec_wait_time)}`) : null,
      running ? el("span", { class: "live-tag" }, "live") : null),
    info.length ? el("dl", { class: "info" }, info.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])) : null,
    output);
}

async function loadOutput() {
  const job = state.job, stepId = state.step;
  if (!job || !stepId) return;
  const out = await api(`/jobs/${encodeURIComponent(job.uuid)}/steps/${encodeURIComponent(stepId)}/output`);
  const pre = $("#step-output");
  if (!pre || pre.dataset.outputStep !== stepId) return;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  const text = out.cmd_output;
  pre.textContent = text === null ? "No output yet: the step has not run." : (text || "(no output)");
  pre.classList.toggle("empty-output", !text);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// -- actions ------------------------------------------------------------------------------

function confirmDialog(action, job) {
  const [title, text, label] = CONFIRM_TEXT[action];
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = `${text} (${job.name})`;
  const button = dialog.querySelector('[data-action="confirm"]');
  button.textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true }));
}

async function runAction(action, job, step) {
  if (RULES.confirm.includes(action) && !(await confirmDialog(action, job))) return;
  const id = encodeURIComponent(job.uuid);
  const request = {
    resume: [`/jobs/${id}/resume`, "PUT"],
    pause: [`/jobs/${id}/pause`, "PUT"],
    discard: [`/jobs/${id}/cancel`, "PUT"],
    drop: [`/jobs/${id}/drop`, "DELETE"],
    rollback: [`/jobs/${id}/steps/${encodeURIComponent(step ? step.id : "")}/rollback`, "PUT"],
  }[action];
  try {
    await api(request[0], { method: request[1] });
    toast(`${action[0].toUpperCase()}${action.slice(1)}: done`);
    clearAlert();
  } catch (err) {
    showRefusal(job, action, err.message);
  }
  refreshJobs.now();
  refreshOverview();
  if (state.selected) refreshDetail.now();
}

function showRefusal(job, action, message) {
  toast(`${action}: ${message}`, "error");
  if (state.selected !== job.uuid) return;
  clearAlert();
  const alert = el("div", { class: "alert", role: "alert", "data-job": job.uuid, "data-refused": action }, `The server refused to ${action} this job: ${message}`);
  const pane = $("#detail");
  const meta = pane.querySelector(".meta");
  if (meta) pane.insertBefore(alert, meta);
}
function clearAlert() { for (const a of document.querySelectorAll("#detail .alert")) a.remove(); }

// -- streaming ------------------------------------------------------------------------------

function streamAllowed(action, status) { return (RULES.streaming.actions[action] || []).includes(status); }

async function loadStreaming() {
  const page = await api("/streaming_jobs?page_size=1000&sort_by=model_alias&reverse=false");
  state.streamJobs = page.data.value;
  renderStreaming();
  if (state.streamSelected) refreshStreamDetail.now();
}

function renderStreaming() {
  const counts = Object.fromEntries(RULES.streaming.statuses.map((s) => [s, 0]));
  for (const job of state.streamJobs) counts[job.job_status] = (counts[job.job_status] || 0) + 1;
  $("#stream-overview").replaceChildren(...RULES.streaming.statuses.map((s) => el("div", { class: "card", style: `--c:${streamColor(s)}` },
    el("span", { class: "count" }, counts[s]), el("span", { class: "label" }, s))));
  $("#stream-body").replaceChildren(...state.streamJobs.map((job) => {
    const status = job.job_status;
    return el("tr", {
      "data-streaming-id": job.uuid, "data-status": status, class: job.uuid === state.streamSelected ? "selected" : "",
      onclick: () => { state.streamSelected = job.uuid; writeHash(); renderStreaming(); refreshStreamDetail.now(); },
    },
    el("td", {}, el("div", { class: "job-cube" }, job.model_alias), el("div", { class: "job-sub" }, job.project)),
    el("td", { class: "muted" }, job.job_type.replace("STREAMING_", "")),
    el("td", {}, el("span", { class: `badge s-${status}`, style: `--c:${streamColor(status)}` }, status),
      job.launching_error ? el("span", { class: "muted", style: "margin-left:6px;font-size:12px" }, "launch failed") : null,
      job.model_broken ? el("span", { class: "muted", style: "margin-left:6px;font-size:12px" }, "model broken") : null),
    el("td", { class: "num" }, job.data_latency === null ? "–" : fmtDuration(job.data_latency / 1000)),
    el("td", { class: "num" }, job.last_batch_count ?? "–"),
    el("td", { class: "c-modified" }, job.last_update_time || "–"),
    el("td", { class: "c-actions" }, el("div", { class: "actions" }, STREAM_ACTIONS.map(([action, label]) => el("button", {
      type: "button", class: "btn", "data-action": action, disabled: !streamAllowed(action, status),
      onclick: (event) => { event.stopPropagation(); streamAction(action, job); },
    }, label)))));
  }));
  $("#stream-detail").hidden = !state.streamSelected;
}

function streamColor(status) { return RULES.streaming.colors[status] || "#9aa0a6"; }
const recordStatus = (action) => RULES.streaming.records[action];

async function streamAction(action, job) {
  try {
    await api("/streaming_jobs/status", { method: "PUT", body: JSON.stringify({ action, job_ids: [job.uuid], project: job.project }) });
    toast(`${action} ${job.model_alias}: done`);
  } catch (err) {
    toast(`${action} ${job.model_alias}: ${err.message}`, "error");
  }
  refreshStreaming.now();
}

async function loadStreamDetail() {
  const id = state.streamSelected;
  const box = $("#stream-detail");
  const job = state.streamJobs.find((j) => j.uuid === id);
  if (!job) { box.hidden = true; return; }
  const [stats, records] = await Promise.all([
    job.job_type.endsWith("BUILD") ? api(`/streaming_jobs/stats/${encodeURIComponent(id)}?time_filter=60`) : Promise.resolve(null),
    api(`/streaming_jobs/records?job_id=${encodeURIComponent(id)}`),
  ]);
  if (state.streamSelected !== id) return;
  const data = stats ? stats.data : null;
  const series = (key) => (data ? data[key].map((v, i) => [data.create_time[i], v]).reverse() : []);
  box.hidden = false;
  box.replaceChildren(
    el("div", { class: "detail-head" }, el("div", { class: "detail-title" },
      el("span", { class: `badge s-${job.job_status}`, style: `--c:${streamColor(job.job_status)}` }, job.job_status),
      el("h2", {}, `${job.model_alias} · ${job.job_type}`)), el("div", { class: "detail-id mono" }, job.uuid)),
    data ? el("div", { class: "charts" },
      chart("Consumption rate", series("consumption_rate_hist"), (v) => `${v.toLocaleString()} rows/s`),
      chart("Data latency", series("data_latency_hist"), (v) => fmtDuration(v / 1000)),
      chart("Processing time", series("processing_time_hist"), (v) => `${v.toLocaleString()} ms`))
      : el("div", { class: "section-title" }, "Merge jobs report no micro-batch statistics"),
    recordsView(records.data));
}

function chart(title, points, format) {
  const latest = points.length ? format(points[points.length - 1][1]) : "–";
  const box = el("div", { class: "chart" }, el("h3", {}, title), el("div", { class: "latest" }, latest));
  if (points.length < 2) { box.append(el("div", { class: "nodata" }, points.length ? "One batch so far" : "No batches in the last hour")); return box; }
  const ns = "http://www.w3.org/2000/svg";
  const W = 300, H = 110, P = 4;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y1 = Math.max(...ys, 1);
  const px = (t) => P + ((t - x0) / Math.max(1, x1 - x0)) * (W - 2 * P);
  const py = (v) => H - P - (v / y1) * (H - 2 * P - 10);
  const line = points.map((p, i) => `${i ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join("");
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const area = document.createElementNS(ns, "path");
  area.setAttribute("d", `${line}L${px(x1)},${H - P}L${px(x0)},${H - P}Z`);
  area.setAttribute("fill", "rgba(59,125,216,.12)");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", line);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", color(RULES.running));
  path.setAttribute("stroke-width", "1.8");
  path.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(area, path);
  box.append(svg, el("div", { class: "muted", style: "font-size:11px;display:flex;justify-content:space-between" },
    el("span", {}, fmtTime(x0)), el("span", {}, `max ${format(y1)}`), el("span", {}, fmtTime(x1))));
  return box;
}

function recordsView(records) {
  const list = records.slice(0, 50);
  const ordered = [...records].reverse();
  const band = el("div", { class: "band", title: "Status over time, from the START / STOP / ERROR records" });
  if (ordered.length) {
    const t0 = ordered[0].create_time, t1 = now(), span = Math.max(1, t1 - t0);
    ordered.forEach((r, i) => {
      const end = i + 1 < ordered.length ? ordered[i + 1].create_time : t1;
      const status = recordStatus(r.action);
      band.append(el("span", { style: `width:${((end - r.create_time) / span) * 100}%;background:${streamColor(status)}`, title: `${r.action} at ${fmtTime(r.create_time)}` }));
    });
  }
  return el("div", { class: "records" }, el("div", { class: "section-title", style: "padding-left:0" }, `Records (${records.length})`), band,
    list.length ? el("ul", { class: "record-list" }, list.map((r) => el("li", {},
      el("span", { class: `badge s-${r.action}`, style: `--c:${streamColor(recordStatus(r.action))}` }, r.action),
      el("span", { class: "muted" }, fmtTime(r.create_time))))) : el("div", { class: "muted" }, "No records yet: the job never ran."));
}

// -- live events ----------------------------------------------------------------------------

const refreshJobs = throttled(loadJobs, 300);
const refreshOverview = throttled(loadOverview, 500);
const refreshDetail = throttled(loadDetail, 250);
const refreshOutput = throttled(loadOutput, 250);
const refreshStreaming = throttled(loadStreaming, 300);
const refreshStreamDetail = throttled(loadStreamDetail, 300);

function refreshAll() {
  if (state.tab === "jobs") { refreshJobs(); refreshOverview(); if (state.selected) refreshDetail(); }
  else { refreshStreaming(); }
}

function onJobEvent(data) {
  // show the new status at once; the throttled reload brings progress, durations, order
  const row = document.querySelector(`#jobs-body tr[data-job-id="${CSS.escape(data.job_id)}"]`);
  if (row && row.dataset.status !== data.status) {
    row.dataset.status = data.status;
    row.querySelector(".c-status").replaceChildren(badge(data.status));
    row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
  }
  refreshJobs(); refreshOverview();
  if (data.job_id === state.selected) refreshDetail();
}

function connect() {
  const live = $("#live");
  const setLive = (mode, label) => { live.dataset.live = mode; live.querySelector(".live-label").textContent = label; state.live = mode === "open"; };
  const source = new EventSource(`${API}/events`);
  source.onopen = () => { setLive("open", "Live"); refreshAll(); };
  source.onerror = () => setLive(source.readyState === EventSource.CLOSED ? "closed" : "connecting", "Reconnecting");
  const parse = (handler) => (event) => { try { handler(JSON.parse(event.data)); } catch (err) { console.warn(err); } };
  source.addEventListener("job", parse(onJobEvent));
  source.addEventListener("step", parse((data) => { if (data.job_id === state.selected) refreshDetail(); }));
  source.addEventListener("output", parse((data) => { if (data.job_id === state.selected && data.step_id === state.step) refreshOutput(); }));
  source.addEventListener("streaming", parse(() => { refreshStreaming(); if (state.streamSelected) refreshStreamDetail(); }));
  source.addEventListener("resync", () => refreshAll());
}

// -- wiring ---------------------------------------------------------------------------------

function showTab() {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === state.tab);
  $("#view-jobs").hidden = state.tab !== "jobs";
  $("#view-streaming").hidden = state.tab !== "streaming";
  document.title = `kjobs · ${state.tab === "jobs" ? "Jobs" : "Streaming"}`;
  if (state.tab === "jobs") { refreshJobs.now(); refreshOverview.now(); refreshDetail.now(); }
  else refreshStreaming.now();
}

function tick() {
  // running durations and bars move on between server updates
  for (const job of state.jobs) {
    if (job.job_status !== RULES.running) continue;
    const cell = document.querySelector(`[data-duration="${CSS.escape(job.uuid)}"]`);
    if (cell) cell.textContent = fmtDuration(jobSeconds(job));
  }
  if (state.job && state.job.job_status === RULES.running) {
    const chart = $("#detail .gantt");
    if (chart && !chart.matches(":hover")) chart.replaceWith(gantt(state.job));
  }
}

function init() {
  $("#user").textContent = CONFIG.user ? `${CONFIG.user} · v${CONFIG.version}` : "";
  readHash();
  $("#f-cube").value = state.cube;
  $("#f-time").value = state.timeFilter;
  $("#page-size").value = String(state.limit);
  renderStatusChips();
  let typing = null;
  $("#f-cube").addEventListener("input", (e) => { clearTimeout(typing); typing = setTimeout(() => { state.cube = e.target.value.trim(); filtersChanged(); }, 250); });
  $("#f-project").addEventListener("change", (e) => { state.project = e.target.value; filtersChanged(); });
  $("#f-time").addEventListener("change", (e) => { state.timeFilter = e.target.value; filtersChanged(); });
  $("#page-size").addEventListener("change", (e) => { state.limit = +e.target.value; filtersChanged(); });
  $("#page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); writeHash(); refreshJobs.now(); });
  $("#page-next").addEventListener("click", () => { state.offset += state.limit; writeHash(); refreshJobs.now(); });
  window.addEventListener("hashchange", () => { readHash(); renderStatusChips(); showTab(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && state.selected && !$("#confirm").open) closeDetail(); });
  loadProjects();
  showTab();
  connect();
  setInterval(tick, 1000);
  setInterval(() => { if (!state.live) refreshAll(); }, POLL_MS);
  // micro-batches change latency and statistics without a status change (no event)
  setInterval(() => { if (state.tab === "streaming") refreshStreaming(); }, STREAM_POLL_MS);
}

init();
