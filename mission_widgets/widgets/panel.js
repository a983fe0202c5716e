// MissionPanel's front-end: an anywidget ES module, plain JavaScript, no build step.
//
// Python sends one synced state, `view` (see widgets/panel_state.py); this module draws it:
// the tqdm-like header and its stacked bar, filter chips, controls, pinned rows, a page of
// rows, the queued line, details and questions. Clocks (elapsed, remaining, "no heartbeat
// for 12 s") tick here once a second, so the kernel never redraws for time alone. What the
// user does goes back as custom messages: {action: "cancel", id: ...}. A second tab shows
// the missions' timeline (the synced `timeline_html`, our own escaped SVG and HTML).
//
// The formatting functions mirror mission_widgets/core/panel_view.py and core/progress.py
// (format_clock, format_meter, format_rate, format_duration); the browser tests check that
// both give the same text.

const TICK_MS = 1000;
const READ_ONLY_AFTER_MS = 2500;

export function formatClock(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "?";
  const whole = Math.floor(Math.max(seconds, 0) + 0.5);
  const secs = whole % 60;
  const minutes = Math.floor(whole / 60) % 60;
  const hours = Math.floor(whole / 3600);
  const two = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${two(minutes)}:${two(secs)}` : `${two(minutes)}:${two(secs)}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  const value = Math.max(seconds, 0);
  if (value < 9.95) return `${value.toFixed(1)}s`;
  const whole = Math.floor(value + 0.5);
  const two = (n) => String(n).padStart(2, "0");
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${two(whole % 60)}s`;
  if (whole < 86400) return `${Math.floor(whole / 3600)}h${two(Math.floor((whole % 3600) / 60))}m`;
  return `${Math.floor(whole / 86400)}d${two(Math.floor((whole % 86400) / 3600))}h`;
}

export function formatRate(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate) || rate <= 0) return "";
  if (rate >= 1) return `${rate.toFixed(1)} missions/s`;
  return `${formatDuration(1 / rate)}/mission`;
}

export function formatMeter(ended, total, elapsed, done, blocked, finished) {
  if (total <= 0) return "no missions yet";
  const count = `${ended}/${total}`;
  const rate = done && elapsed !== null && elapsed > 0 ? done / elapsed : null;
  const rateText = formatRate(rate) || "? missions/s";
  if (elapsed === null || elapsed === undefined) {
    return blocked ? `${count} [${blocked}]` : `${count} [not started]`;
  }
  if (finished) return `${count} [${formatClock(elapsed)} total, ${rateText}]`;
  if (blocked) return `${count} [${formatClock(elapsed)}, ${blocked}]`;
  const remaining = rate ? (total - ended) / rate : null;
  return `${count} [${formatClock(elapsed)}<${formatClock(remaining)}, ${rateText}]`;
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function progressBar(fraction, label, extraClass) {
  const pct = Math.round(100 * Math.min(Math.max(fraction || 0, 0), 1));
  return h(
    "div",
    {
      class: `mw-bar ${extraClass || ""}`,
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": pct,
      "aria-valuetext": `${pct}%`,
    },
    h("div", { class: "mw-fill", style: `width:${pct}%` }),
  );
}

function render({ model, el }) {
  let live = false;
  let offset = 0; // kernel clock minus browser clock, in seconds
  const root = h("div", { class: "mw-panel", role: "region", "aria-label": "Missions" });
  const hider = h("style");
  el.append(root);
  root.append(hider);

  const send = (content) => {
    if (!live) return;
    try {
      model.send(content);
    } catch (err) {
      console.warn("mission panel: cannot reach the kernel", err);
    }
  };
  const now = () => Date.now() / 1000 + offset;

  // -- the parts that stay (inputs keep focus and what is typed) ----------------------------
  const title = h("span", { class: "mw-title" }, "Missions");
  const stack = h("div", {
    class: "mw-stack",
    role: "progressbar",
    "aria-label": "missions ended",
    "aria-valuemin": 0,
  });
  const meter = h("span", { class: "mw-meter", "aria-live": "off" });
  const head = h("div", { class: "mw-head" }, title, stack, meter);
  const filters = h("div", {
    class: "mw-filters",
    role: "toolbar",
    "aria-label": "Show missions by status",
  });
  const goal = h("input", {
    class: "mw-goal",
    type: "text",
    dir: "auto",
    "aria-label": "Goal of a new mission",
    placeholder: "Describe a goal, press Enter",
  });
  const submit = h("button", { class: "mw-submit mw-primary", type: "submit" }, "Submit");
  const runQueued = h("button", { class: "mw-run-queued", type: "button" }, "Run queued");
  const poll = h("button", { class: "mw-poll", type: "button" }, "Poll");
  const clear = h(
    "button",
    { class: "mw-clear", type: "button", title: "Forget finished missions (rows, logs, files)" },
    "Clear finished",
  );
  const atOnce = h("input", {
    class: "mw-at-once",
    type: "number",
    min: 1,
    step: 1,
    "aria-label": "Missions at once (max_concurrent)",
  });
  const sort = h("select", { class: "mw-sort", "aria-label": "Order of the rows" });
  const form = h(
    "form",
    { class: "mw-controls", "aria-label": "New mission and controls" },
    goal,
    submit,
    runQueued,
    poll,
    clear,
    h("label", { class: "mw-at-once-label" }, "at once ", atOnce),
    sort,
  );
  const message = h("div", { class: "mw-message", role: "status", "aria-live": "polite" });
  const readOnly = h("div", { class: "mw-read-only", hidden: true });
  const pinned = h("div", { class: "mw-pinned", role: "list", "aria-label": "Need attention" });
  const rows = h("div", { class: "mw-rows", role: "list", "aria-label": "Missions" });
  const queued = h("div", { class: "mw-queued" });
  const pager = h("div", { class: "mw-pager" });
  // Two views of the same missions, as tabs: the rows, and the timeline (what
  // orch.timeline() draws, sent by Python only while this tab is open).
  const uid = Math.random().toString(36).slice(2, 10);
  const tab = (name, label) =>
    h(
      "button",
      {
        class: `mw-tab mw-tab-${name}`,
        type: "button",
        role: "tab",
        id: `mw-tab-${name}-${uid}`,
        "aria-controls": `mw-view-${name}-${uid}`,
      },
      label,
    );
  const listTab = tab("list", "Missions");
  const timelineTab = tab("timeline", "Timeline");
  const tabs = h(
    "div",
    {
      class: "mw-tabs",
      role: "tablist",
      "aria-label": "Show the missions as",
      // Lumino (JupyterLab, Notebook 7) matches no shortcut for keys typed in here (Enter
      // would edit the cell).
      "data-lm-suppress-shortcuts": "true",
    },
    listTab,
    timelineTab,
  );
  const tabPanel = (name, button, hidden, ...children) =>
    h(
      "div",
      {
        class: `mw-${name}-view`,
        role: "tabpanel",
        id: button.getAttribute("aria-controls"),
        "aria-labelledby": button.id,
        hidden,
      },
      ...children,
    );
  const listView = tabPanel("list", listTab, false, pinned, rows, queued, pager);
  const picture = h("div", { class: "mw-timeline-picture" });
  const timelinePager = h("div", { class: "mw-pager mw-timeline-pager" });
  const timelineView = tabPanel("timeline", timelineTab, true, timelinePager, picture);
  root.append(head, filters, form, message, readOnly, tabs, listView, timelineView);

  const submitGoal = () => {
    send({ action: "submit", goal: goal.value });
    goal.value = "";
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitGoal();
  });
  // Keys typed in the panel's boxes are the panel's: the notebook's shortcuts (Enter
  // edits a cell, "a" adds one) must not see them, and Enter acts here.
  for (const box of [goal, atOnce]) {
    box.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key !== "Enter") return;
      event.preventDefault();
      if (box === goal) submitGoal();
      else send({ action: "max_concurrent", value: atOnce.value });
    });
  }
  runQueued.addEventListener("click", () => send({ action: "run_queued" }));
  poll.addEventListener("click", () => send({ action: "poll" }));
  clear.addEventListener("click", () => send({ action: "clear_finished" }));
  atOnce.addEventListener("change", () => send({ action: "max_concurrent", value: atOnce.value }));
  sort.addEventListener("change", () => send({ action: "sort", sort: sort.value }));

  // -- the two views ----------------------------------------------------------------------
  const viewTabs = [
    [listTab, "list"],
    [timelineTab, "timeline"],
  ];
  function choose(mode) {
    if (model.get("view_mode") === mode) return;
    model.set("view_mode", mode); // shown at once; Python draws the timeline when it opens
    try {
      model.save_changes();
    } catch (err) {
      // a saved view without its kernel: the tab still switches here
    }
  }
  for (const [button, mode] of viewTabs) button.addEventListener("click", () => choose(mode));
  // Both tabs stay in the Tab order (Notebook 7 takes the arrow keys before the page sees
  // them); Enter or Space picks one, and where the arrows arrive (JupyterLab, marimo) they
  // move between the tabs as in the ARIA tablist pattern.
  tabs.addEventListener("keydown", (event) => {
    const at = viewTabs.findIndex(([button]) => button === event.target);
    if (at < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = (at + 1) % viewTabs.length;
    else if (event.key === "ArrowLeft") next = (at + viewTabs.length - 1) % viewTabs.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = viewTabs.length - 1;
    else if (event.key === "Enter" || event.key === " ") next = at;
    if (next === null) return;
    event.preventDefault();
    event.stopPropagation();
    viewTabs[next][0].focus();
    choose(viewTabs[next][1]);
  });

  function drawMode() {
    const onTimeline = model.get("view_mode") === "timeline";
    for (const [button, mode] of viewTabs) {
      const on = (mode === "timeline") === onTimeline;
      button.setAttribute("aria-selected", on ? "true" : "false");
      button.classList.toggle("mw-active", on);
    }
    listView.hidden = onTimeline;
    filters.hidden = onTimeline; // the chips filter rows, not the picture
    timelineView.hidden = !onTimeline;
    drawTimeline();
  }

  let pictureHtml = null;
  function drawTimeline() {
    if (model.get("view_mode") !== "timeline") return;
    const text = model.get("timeline_html") || "";
    if (text !== pictureHtml) {
      pictureHtml = text;
      // What the person folded and where they scrolled survive the redraws.
      const folded = new Set();
      for (const block of picture.querySelectorAll("details.mw-tl-mission")) {
        const id = block.querySelector("[data-mission]")?.getAttribute("data-mission");
        if (id && !block.open) folded.add(id);
      }
      const { scrollLeft, scrollTop } = picture;
      if (text) {
        picture.innerHTML = text; // Timeline.to_html(): built and escaped in Python
      } else {
        const wait = live ? "Drawing the timeline\u2026" : "Run the notebook to see the timeline.";
        picture.replaceChildren(h("div", { class: "mw-timeline-empty" }, wait));
      }
      for (const block of picture.querySelectorAll("details.mw-tl-mission")) {
        const id = block.querySelector("[data-mission]")?.getAttribute("data-mission");
        if (folded.has(id)) block.open = false;
      }
      picture.scrollLeft = scrollLeft;
      picture.scrollTop = scrollTop;
    }
    const page = model.get("timeline_page") || 1;
    const pages = model.get("timeline_pages") || 1;
    if (pages <= 1) {
      timelinePager.replaceChildren();
      return;
    }
    const turn = (cls, label, to, text, off) =>
      h(
        "button",
        {
          class: cls,
          type: "button",
          "aria-label": label,
          disabled: !live || off,
          onclick: () => send({ action: "timeline_page", page: to }),
        },
        text,
      );
    timelinePager.replaceChildren(
      turn("mw-prev", "Previous missions of the timeline", page - 1, "\u2039 prev", page <= 1),
      h("span", { class: "mw-page" }, `missions page ${page}/${pages}`),
      turn("mw-next", "Next missions of the timeline", page + 1, "next \u203a", page >= pages),
    );
  }

  // -- rows -------------------------------------------------------------------------------
  function timeText(row) {
    if (row.finished) return row.elapsed === null ? "" : formatDuration(row.elapsed);
    if (row.started_at === null || row.started_at === undefined) return "";
    const elapsed = Math.max(now() - row.started_at, 0);
    let text = formatDuration(elapsed);
    if (row.status === "running" && row.progress > 0 && row.progress < 0.99) {
      text += ` \u00b7 ${formatDuration((elapsed * (1 - row.progress)) / row.progress)} left`;
    }
    return text;
  }

  function noteText(row) {
    const since = (t) => Math.round(Math.max(now() - t, 0));
    if (row.health === "no_heartbeat" && row.heartbeat_at) {
      return `no heartbeat for ${since(row.heartbeat_at)} s`;
    }
    if (row.health === "no_progress" && row.activity_at) {
      return `no progress for ${since(row.activity_at)} s`;
    }
    return row.note;
  }

  function rowNode(row, view) {
    const label = row.goal.length > 60 ? `${row.goal.slice(0, 59)}\u2026` : row.goal;
    const cancel = row.cancellable
      ? h(
          "button",
          {
            class: "mw-cancel",
            type: "button",
            "aria-label": `Cancel ${label}`,
            disabled: !live,
            onclick: (event) => {
              event.currentTarget.disabled = true;
              send({ action: "cancel", id: row.id });
            },
          },
          "Cancel",
        )
      : null;
    const open = Object.prototype.hasOwnProperty.call(view.details || {}, row.id);
    const details = h(
      "button",
      {
        class: "mw-details-toggle",
        type: "button",
        "aria-expanded": open ? "true" : "false",
        "aria-label": `Details of ${label}`,
        disabled: !live,
        onclick: () => send({ action: "details", id: row.id, open: !open }),
      },
      "Details",
    );
    const time = h("span", { class: "mw-time" }, timeText(row));
    time._row = row;
    const note = h(
      "div",
      { class: `mw-line2 mw-k-${row.note_kind || "none"}`, dir: "auto" },
      noteText(row),
    );
    note._row = row;
    const node = h(
      "div",
      {
        class: `mw-row mw-s-${row.status}${row.attention ? " mw-attention" : ""}`,
        role: "listitem",
        "data-id": row.id,
        "data-status": row.status,
      },
      h(
        "span",
        { class: "mw-status" },
        h("span", { class: "mw-glyph", "aria-hidden": "true" }, row.glyph),
        ` ${row.status}`,
      ),
      h("span", { class: "mw-goal-text", dir: "auto", title: row.goal }, row.goal),
      progressBar(row.progress, `progress of ${label}`, `mw-s-${row.status}`),
      h("span", { class: "mw-steps", title: "steps done / steps" }, row.steps),
      time,
      h("span", { class: "mw-actions" }, cancel, details),
      row.note ? note : null,
    );
    const question = (view.questions || {})[row.id];
    if (question) node.append(questionNode(row, question, (view.explanations || {})[row.id]));
    if (open) {
      const box = h("div", { class: "mw-details" });
      box.innerHTML = view.details[row.id]; // built and escaped in Python (static.py)
      node.append(box);
    }
    return node;
  }

  function questionNode(row, html, explanation) {
    const text = h("div", { class: "mw-question-text" });
    text.innerHTML = html; // built and escaped in Python (static.py)
    const buttons = [
      ["explain", "Explain", "What went wrong, in the mission's model's words"],
      ["retry", "Retry", "Run the step again"],
      ["skip", "Skip", "Go on without this step"],
      ["abort", "Abort", "End the mission as failed"],
    ].map(([name, label, tip]) =>
      h(
        "button",
        {
          class: `mw-decide mw-${name}`,
          type: "button",
          title: tip,
          disabled: !live,
          onclick: (event) => {
            event.currentTarget.disabled = true;
            send(
              name === "explain"
                ? { action: "explain", id: row.id }
                : { action: "decide", id: row.id, decision: name },
            );
          },
        },
        label,
      ),
    );
    const box = h(
      "div",
      { class: "mw-question", role: "group", "aria-label": "Your decision" },
      text,
      h("div", { class: "mw-question-buttons" }, ...buttons),
    );
    if (explanation) {
      box.append(
        h(
          "div",
          { class: "mw-explanation" },
          h("div", { class: "mw-explanation-title" }, "Explanation"),
          h("div", { class: "mw-explanation-text", dir: "auto" }, explanation),
        ),
      );
    }
    return box;
  }

  // -- the whole view -----------------------------------------------------------------------
  function drawHeader(view) {
    const header = view.header;
    stack.replaceChildren(
      ...header.segments.map(([status, n]) =>
        h("div", {
          class: `mw-seg mw-s-${status}`,
          style: `width:${(100 * n) / Math.max(header.total, 1)}%`,
          title: `${n} ${status}`,
        }),
      ),
    );
    stack.setAttribute("aria-valuemax", header.total);
    stack.setAttribute("aria-valuenow", header.ended);
    tickHeader(view);
  }

  function tickHeader(view) {
    const header = view.header;
    let elapsed = null;
    if (header.started_at !== null && header.started_at !== undefined) {
      elapsed = Math.max((header.finished_at ?? now()) - header.started_at, 0);
    }
    const over = header.total > 0 && header.ended === header.total && header.finished_at;
    const text = formatMeter(
      header.ended,
      header.total,
      elapsed,
      header.done,
      over ? null : header.blocked,
      Boolean(over),
    );
    meter.textContent = text;
    stack.setAttribute("aria-valuetext", text);
  }

  function drawFilters(view) {
    filters.replaceChildren(
      ...view.filters.map((f) =>
        h(
          "button",
          {
            class: `mw-chip mw-s-${f.status}${f.status === view.filter ? " mw-active" : ""}`,
            type: "button",
            "aria-pressed": f.status === view.filter ? "true" : "false",
            title: f.status === "all" ? "Show all missions" : `Show ${f.status} missions only`,
            disabled: !live,
            onclick: () => send({ action: "filter", status: f.status }),
          },
          f.status === "all"
            ? null
            : h("span", { class: "mw-glyph", "aria-hidden": "true" }, glyphOf(view, f.status)),
          `${f.n} ${f.status}`,
        ),
      ),
    );
  }

  function glyphOf(view, status) {
    return (view.glyphs || {})[status] || "";
  }

  function drawControls(view) {
    const canSubmit = live && view.can_submit;
    submit.disabled = !canSubmit;
    goal.disabled = !live;
    submit.title = view.can_submit ? "Run this goal as a new mission" : "Submit needs a model";
    goal.placeholder = view.can_submit
      ? "Describe a goal, press Enter"
      : "Submit needs a model: MissionOrchestrator(model=...)";
    for (const button of [runQueued, poll, clear]) button.disabled = !live;
    atOnce.disabled = !live;
    if (document.activeElement !== atOnce) atOnce.value = view.max_concurrent;
    if (sort.options.length !== view.sorts.length) {
      sort.replaceChildren(...view.sorts.map(([key, label]) => h("option", { value: key }, label)));
    }
    sort.value = view.sort;
    sort.disabled = !live;
    const msg = view.message || {};
    message.textContent = msg.text || "";
    message.className = `mw-message mw-m-${msg.kind || "none"}`;
  }

  // Rows are kept by mission id and rebuilt only when what they show changed, so a
  // focused button, a hover or a selection survives the updates of other rows.
  const drawn = new Map();
  function keyedRows(list, view) {
    return list.map((row) => {
      const key = JSON.stringify([
        row,
        live,
        (view.details || {})[row.id] ?? null,
        (view.questions || {})[row.id] ?? null,
        (view.explanations || {})[row.id] ?? null,
      ]);
      const old = drawn.get(row.id);
      if (old && old.key === key) return old.node;
      const node = rowNode(row, view);
      drawn.set(row.id, { key, node });
      return node;
    });
  }

  function place(container, nodes) {
    const same =
      container.children.length === nodes.length &&
      nodes.every((node, i) => container.children[i] === node);
    if (!same) container.replaceChildren(...nodes);
  }

  function drawRows(view) {
    const shown = new Set([...view.pinned, ...view.rows, ...view.queued.rows].map((r) => r.id));
    for (const id of [...drawn.keys()]) if (!shown.has(id)) drawn.delete(id);
    const more = view.pinned_more
      ? [h("div", { class: "mw-more" }, `${view.pinned_more} more need attention: filter by status`)]
      : [];
    place(pinned, [...keyedRows(view.pinned, view), ...more]);
    place(rows, keyedRows(view.rows, view));
    const q = view.queued;
    if (q.n) {
      const toggle = h(
        "button",
        {
          class: "mw-queued-toggle",
          type: "button",
          "aria-expanded": q.open ? "true" : "false",
          disabled: !live,
          onclick: () => send({ action: "queued", open: !q.open }),
        },
        `${q.open ? "\u25be" : "\u25b8"} ${q.n} queued`,
      );
      const list = h("div", { class: "mw-queued-rows", role: "list" });
      list.append(...keyedRows(q.rows, view));
      if (q.more) list.append(h("div", { class: "mw-more" }, `and ${q.more} more queued`));
      queued.replaceChildren(toggle, list);
    } else {
      queued.replaceChildren();
    }
    if (view.pages > 1) {
      pager.replaceChildren(
        h(
          "button",
          {
            class: "mw-prev",
            type: "button",
            disabled: !live || view.page === 0,
            "aria-label": "Previous page (newer)",
            onclick: () => send({ action: "page", page: view.page - 1 }),
          },
          "\u2039 prev",
        ),
        h("span", { class: "mw-page" }, `page ${view.page + 1}/${view.pages}`),
        h(
          "button",
          {
            class: "mw-next",
            type: "button",
            disabled: !live || view.page >= view.pages - 1,
            "aria-label": "Next page (older)",
            onclick: () => send({ action: "page", page: view.page + 1 }),
          },
          "next \u203a",
        ),
      );
    } else {
      pager.replaceChildren();
    }
  }

  function draw() {
    const view = model.get("view");
    if (!view || !view.header) return;
    if (view.snapshot_class) {
      hider.textContent = `.${view.snapshot_class}{display:none !important}`;
    }
    drawHeader(view);
    drawFilters(view);
    drawControls(view);
    drawRows(view);
    drawMode();
  }

  function tick() {
    const view = model.get("view");
    if (!view || !view.header) return;
    tickHeader(view);
    for (const node of root.querySelectorAll(".mw-time")) {
      if (node._row && !node._row.finished) node.textContent = timeText(node._row);
    }
    for (const node of root.querySelectorAll(".mw-line2")) {
      if (node._row && node._row.health) node.textContent = noteText(node._row);
    }
  }

  function onView() {
    const view = model.get("view");
    if (view && typeof view.now === "number") offset = view.now - Date.now() / 1000;
    draw();
  }

  const seen = model.get("kernel_seen");
  const onSeen = () => {
    if (model.get("kernel_seen") === seen) return;
    live = true;
    readOnly.hidden = true;
    pictureHtml = null; // its placeholder says something else now
    draw();
  };
  model.on("change:view", onView);
  model.on("change:kernel_seen", onSeen);
  const timelineChanges = [
    "change:view_mode",
    "change:timeline_html",
    "change:timeline_page",
    "change:timeline_pages",
  ];
  for (const name of timelineChanges) model.on(name, drawMode);
  onView();
  const timer = setInterval(tick, TICK_MS);
  const notLive = setTimeout(() => {
    if (live) return;
    readOnly.hidden = false;
    readOnly.textContent = "Saved view: run the notebook to use the buttons.";
  }, READ_ONLY_AFTER_MS);
  try {
    model.send({ action: "hello" });
  } catch (err) {
    // a saved view without its kernel: it stays read-only
  }
  return () => {
    clearInterval(timer);
    clearTimeout(notLive);
    model.off("change:view", onView);
    model.off("change:kernel_seen", onSeen);
    for (const name of timelineChanges) model.off(name, drawMode);
  };
}

export default { render };
