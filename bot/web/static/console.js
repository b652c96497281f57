// Beacon responder console: the queue, one case at a time, and the dashboard.
// Contract: docs/console-api.md. No library, no build step.
// Everything a person wrote is untrusted: it only ever reaches the page through
// textContent / text nodes, never as markup.
"use strict";

(() => {
  const main = document.getElementById("console");
  if (!main) { return; }

  const $ = (id) => document.getElementById(id);
  const parseJson = (text, fallback) => {
    try { return JSON.parse(text); } catch (_) { return fallback; }
  };

  const S = parseJson(main.getAttribute("data-strings") || "{}", {});
  const me = parseJson(main.getAttribute("data-me") || "{}", {});
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const lang = document.documentElement.lang || me.ui_language || "en";
  const baseTitle = document.title;
  const TIERS = ["low", "medium", "high", "critical"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  // --- strings and formatting ---------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(lang);
  const num = (n) => numberFormat.format(n);

  /** The UI string ``key`` with ``{placeholders}`` filled. */
  function t(key, values) {
    let text = Object.prototype.hasOwnProperty.call(S, key) ? String(S[key]) : key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, (whole, name) =>
        Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
    }
    return text;
  }

  /** ``key`` if the strings have it, else ``fallback`` (for labels keyed by server codes). */
  function tOr(key, fallback) {
    return Object.prototype.hasOwnProperty.call(S, key) ? String(S[key]) : fallback;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    if (s < 60) { return t("waiting_seconds", { seconds: num(s) }); }
    const minutes = Math.floor(s / 60);
    if (minutes < 60) { return t("waiting_minutes", { minutes: num(minutes) }); }
    const hours = Math.floor(minutes / 60);
    if (hours < 48) { return t("waiting_hours", { hours: num(hours), minutes: num(minutes % 60) }); }
    return t("waiting_days", { days: num(Math.floor(hours / 24)), hours: num(hours % 24) });
  }

  const timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(lang, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const dayFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", timeZone: "UTC" });

  function timeElement(iso) {
    const el = document.createElement("time");
    if (!iso) { return el; }
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) { return el; }
    el.dateTime = iso;
    const today = new Date();
    el.textContent = date.toDateString() === today.toDateString()
      ? timeFormat.format(date) : dateTimeFormat.format(date);
    el.title = date.toLocaleString(lang);
    return el;
  }

  /** A timestamp as the clock time today, else with the day. */
  function clock(iso) {
    const date = new Date(iso || "");
    if (!iso || Number.isNaN(date.getTime())) { return t("unknown_value"); }
    return date.toDateString() === new Date().toDateString()
      ? timeFormat.format(date) : dateTimeFormat.format(date);
  }

  function dayLabel(day) {
    const date = new Date(`${day}T00:00:00Z`);
    return Number.isNaN(date.getTime()) ? String(day) : dayFormat.format(date);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function hiddenText(text) {
    return el("span", "visually-hidden", text);
  }

  function channelLabel(code) {
    return code ? tOr(`channel_${code}`, code) : t("unknown_value");
  }

  function statusLabel(summary) {
    return summary.status_label || tOr(`status_${summary.status}`, summary.status);
  }

  function urgencyLabel(summary) {
    return summary.urgency_label || tOr(`urgency_${summary.urgency}`, summary.urgency);
  }

  function indicatorLabels(summary) {
    const labels = summary.indicator_labels || {};
    return (summary.indicators || []).map((id) => labels[id] || tOr(`indicator_${id}`, id));
  }

  function tier(summary) {
    return TIERS.includes(summary.urgency) ? summary.urgency : "low";
  }

  function holderText(summary) {
    if (summary.mine) { return t("claimed_by_me"); }
    if (summary.claimed_by) { return t("claimed_by", { name: summary.claimed_by }); }
    return t("unclaimed");
  }

  function badge(summary) {
    return el("span", `badge urgency-${tier(summary)}`, urgencyLabel(summary));
  }

  function chips(labels) {
    const list = el("span", "chips");
    if (!labels.length) {
      list.appendChild(el("span", "muted", t("no_indicators")));
      return list;
    }
    labels.forEach((label, index) => {
      if (index > 0) { list.appendChild(hiddenText(", ")); }
      list.appendChild(el("span", "chip", label));
    });
    return list;
  }

  // --- the server ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  let leaving = false;

  function toLogin() {
    if (leaving) { return; }
    leaving = true;
    window.location.assign("/console/login");
  }

  async function api(method, path, body) {
    const options = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf;
      options.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (_) {
      throw new ApiError(0, t("error_network"));
    }
    if (response.status === 401) {
      toLogin();
      throw new ApiError(401, t("error_not_logged_in"));
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const message = data && typeof data.error === "string" ? data.error : t("error_generic");
      throw new ApiError(response.status, message);
    }
    return data || {};
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(() => { timer = null; fn(); }, ms);
    };
  }

  // --- page state ---------------------------------------------------------------------------

  const state = {
    queue: [],
    known: null, // Map case id -> urgency from the previous queue answer (null before the first)
    caseId: null,
    caseData: null,
    lastInbound: new Map(), // case id -> highest inbound message id shown
    drafts: new Map(), // case id -> unsent reply
    responders: null,
    respondersAt: 0,
    stats: null,
    live: false,
    tab: "cases",
  };

  const narrow = window.matchMedia("(max-width: 600px)");

  const announcer = $("announcer");
  const polite = $("polite");

  function announce(region, text) {
    region.textContent = "";
    // A fresh text node after a tick makes screen readers read the same text twice in a row.
    setTimeout(() => { region.textContent = text; }, 50);
  }

  function showError(node, message) {
    node.textContent = message || "";
  }

  // --- static texts -------------------------------------------------------------------------

  document.querySelectorAll("[data-i18n]").forEach((node) => {
    node.textContent = t(node.getAttribute("data-i18n"));
  });
  const myName = me.display_name || me.username || "";
  $("whoami").textContent = me.role && me.role !== "responder"
    ? t("signed_in_as_role", { name: myName, role: tOr(`role_${me.role}`, me.role) })
    : t("signed_in_as", { name: myName });

  // --- waiting clocks -----------------------------------------------------------------------

  function waitingClock(seconds) {
    const node = el("span", "waiting");
    if (seconds === null || seconds === undefined) {
      node.textContent = t("unknown_value");
      return node;
    }
    node.setAttribute("data-waiting", String(seconds));
    node.setAttribute("data-since", String(performance.now()));
    node.textContent = duration(seconds);
    return node;
  }

  function tickClocks() {
    const now = performance.now();
    document.querySelectorAll("[data-waiting]").forEach((node) => {
      const base = Number(node.getAttribute("data-waiting"));
      const since = Number(node.getAttribute("data-since"));
      const text = duration(base + (now - since) / 1000);
      if (node.textContent !== text) { node.textContent = text; }
    });
  }
  setInterval(tickClocks, 1000);

  // --- views (phone: queue or case) and tabs ------------------------------------------------

  function showView(view) {
    document.body.setAttribute("data-view", view);
  }

  function backToQueue() {
    if (history.state && history.state.beaconCase) {
      history.back(); // popstate shows the queue
      return;
    }
    showView("queue");
    focusQueueRow(state.caseId);
  }

  window.addEventListener("popstate", () => {
    if (history.state && history.state.beaconCase) {
      showView("case");
    } else {
      showView("queue");
      focusQueueRow(state.caseId);
    }
  });

  $("back").addEventListener("click", backToQueue);

  const tabs = { cases: $("cases-tab"), dashboard: $("dashboard-tab") };
  const panels = { cases: $("work"), dashboard: $("dashboard") };
  if (me.role === "admin") {
    // Only admins get the accounts page (the server refuses the others anyway).
    tabs.accounts = $("accounts-tab");
    panels.accounts = $("accounts");
    tabs.accounts.hidden = false;
  }
  const tabOrder = Object.keys(tabs);

  function selectTab(name, focusTab) {
    state.tab = name;
    tabOrder.forEach((key) => {
      const on = key === name;
      tabs[key].setAttribute("aria-selected", on ? "true" : "false");
      panels[key].hidden = !on;
    });
    if (focusTab) { tabs[name].focus(); }
    if (name === "dashboard") { loadStats(); }
    if (name === "accounts") { loadAccounts(); }
  }

  tabOrder.forEach((key, index) => {
    tabs[key].addEventListener("click", () => selectTab(key, false));
    tabs[key].addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        const step = event.key === "ArrowRight" ? 1 : tabOrder.length - 1;
        selectTab(tabOrder[(index + step) % tabOrder.length], true);
      }
    });
  });

  // --- queue --------------------------------------------------------------------------------

  const queueList = $("queue");
  const queueError = $("queue-error");
  let queueSeq = 0;

  function queueRow(summary) {
    const item = document.createElement("li");
    const row = el("button", `case-row urgency-${tier(summary)}`);
    row.type = "button";
    row.setAttribute("data-case-id", String(summary.id));
    if (summary.mine) { row.classList.add("mine"); }
    if (summary.id === state.caseId) { row.setAttribute("aria-current", "true"); }

    const top = el("span", "row-top");
    top.appendChild(badge(summary));
    top.appendChild(el("span", "case-no", t("case_number", { id: summary.id })));
    if (summary.blocked) { top.appendChild(el("span", "badge badge-blocked", t("blocked_badge"))); }
    const wait = el("span", "row-wait");
    wait.appendChild(hiddenText(`${t("field_waiting")}: `));
    wait.appendChild(waitingClock(summary.waiting_seconds));
    top.appendChild(wait);
    row.appendChild(top);

    const meta = [
      summary.language_name || summary.language || t("unknown_value"),
      channelLabel(summary.channel),
      summary.country || (summary.office ? t("office_code", { office: summary.office }) : t("unknown_value")),
    ];
    row.appendChild(el("span", "row-meta", meta.join(" · ")));
    const indicators = chips(indicatorLabels(summary));
    indicators.classList.add("row-indicators");
    row.appendChild(indicators);

    const holder = [holderText(summary)];
    if (summary.assigned_to) { holder.push(t("assigned_to", { name: summary.assigned_to })); }
    if (summary.bot_form_open) { holder.push(t("bot_form_open")); }
    row.appendChild(el("span", "row-holder", holder.join(" · ")));

    row.addEventListener("click", () => openCase(summary.id, true));
    item.appendChild(row);
    return item;
  }

  function focusQueueRow(caseId) {
    if (caseId === null || caseId === undefined) { return; }
    const row = queueList.querySelector(`.case-row[data-case-id="${Number(caseId)}"]`);
    if (row) { row.focus(); }
  }

  function renderQueue(cases) {
    const previous = state.known;
    if (previous) {
      const news = cases
        .filter((summary) => summary.urgency === "critical" && previous.get(summary.id) !== "critical")
        .map((summary) => {
          const labels = indicatorLabels(summary);
          return t("announce_critical", {
            id: summary.id,
            indicators: labels.length ? labels.join(", ") : t("no_indicators"),
          });
        });
      if (news.length) { announce(announcer, news.join(" ")); }
    }
    state.known = new Map(cases.map((summary) => [summary.id, summary.urgency]));
    state.queue = cases;

    const active = document.activeElement;
    const focusedRow = active && active.closest ? active.closest("#queue .case-row") : null;
    const focusedId = focusedRow ? Number(focusedRow.getAttribute("data-case-id")) : null;

    const fragment = document.createDocumentFragment();
    cases.forEach((summary) => fragment.appendChild(queueRow(summary)));
    queueList.replaceChildren(fragment);
    if (focusedId !== null) {
      const again = queueList.querySelector(`.case-row[data-case-id="${focusedId}"]`);
      if (again) { again.focus(); } else if (queueList.querySelector(".case-row")) {
        queueList.querySelector(".case-row").focus();
      } else { $("take-next").focus(); }
    }

    $("queue-empty").hidden = cases.length > 0;
    const waiting = cases.filter((summary) => summary.status === "queued").length;
    $("queue-count").textContent = cases.length ? t("queue_count", { count: num(waiting) }) : "";
    document.title = waiting > 0 ? `(${num(waiting)}) ${baseTitle}` : baseTitle;
  }

  async function loadQueue() {
    const seq = ++queueSeq;
    try {
      const data = await api("GET", "/console/api/queue");
      if (seq !== queueSeq) { return; }
      if (queueError.getAttribute("data-source") === "queue") { showError(queueError, ""); }
      renderQueue(Array.isArray(data.cases) ? data.cases : []);
    } catch (error) {
      if (seq !== queueSeq || error.status === 401) { return; }
      queueError.setAttribute("data-source", "queue");
      showError(queueError, error.message);
    }
  }
  const queueSoon = debounce(loadQueue, 100);

  const takeNextButton = $("take-next");

  async function takeNext() {
    if (takeNextButton.disabled) { return; }
    if (state.tab !== "cases") { selectTab("cases", false); }
    takeNextButton.disabled = true;
    queueError.setAttribute("data-source", "take-next");
    showError(queueError, "");
    try {
      const data = await api("POST", "/console/api/take-next", {});
      if (data.case && data.case.id !== undefined) {
        await openCase(data.case.id, true);
        announce(polite, t("done_claimed", { id: data.case.id }));
      }
    } catch (error) {
      if (error.status !== 401) {
        queueError.setAttribute("data-source", "take-next");
        showError(queueError, error.message);
      }
    } finally {
      takeNextButton.disabled = false;
      queueSoon();
    }
  }
  takeNextButton.addEventListener("click", takeNext);

  // --- one case -----------------------------------------------------------------------------

  const caseView = $("case-view");
  const caseBody = $("case-body");
  const caseError = $("case-error");
  const caseStatus = $("case-status");
  const transcript = $("transcript");
  const replyForm = $("reply-form");
  const replyText = $("reply-text");
  const replySend = $("reply-send");
  const noteForm = $("note-form");
  const noteText = $("note-text");
  const transferForm = $("transfer-form");
  const transferButton = $("transfer");
  const blockForm = $("block-form");
  const blockButton = $("block");
  const consentForm = $("consent-form");
  const consentOpen = $("consent-open");
  let caseSeq = 0;

  function markCurrentRow() {
    queueList.querySelectorAll(".case-row").forEach((row) => {
      if (Number(row.getAttribute("data-case-id")) === state.caseId) {
        row.setAttribute("aria-current", "true");
      } else {
        row.removeAttribute("aria-current");
      }
    });
  }

  async function openCase(caseId, focusHeading) {
    const id = Number(caseId);
    if (state.caseId !== id) {
      if (state.caseId !== null) { state.drafts.set(state.caseId, replyText.value); }
      state.caseId = id;
      state.caseData = null;
      replyText.value = state.drafts.get(id) || "";
      noteText.value = "";
      closeTransfer(false);
      closeBlock(false);
      consentForm.reset();
      closeConsent(false);
      $("safety-banners").replaceChildren();
      $("consents").replaceChildren();
      $("sharing-blocked").hidden = true;
      showError(caseError, "");
      caseStatus.textContent = "";
      transcript.replaceChildren();
      $("notes").replaceChildren();
      $("events").replaceChildren();
      $("case-summary").replaceChildren();
      $("case-heading").textContent = t("case_number", { id });
      $("case-badge").textContent = t("loading");
      $("case-badge").className = "badge";
      setControls(null);
    }
    markCurrentRow();
    $("case-none").hidden = true;
    caseBody.hidden = false;
    if (narrow.matches && document.body.getAttribute("data-view") !== "case") {
      history.pushState({ beaconCase: id }, "");
    }
    showView("case");
    if (focusHeading) { $("case-heading").focus(); }
    await loadCase();
  }

  async function loadCase() {
    const id = state.caseId;
    if (id === null) { return; }
    const seq = ++caseSeq;
    try {
      const data = await api("GET", `/console/api/cases/${encodeURIComponent(id)}`);
      if (seq !== caseSeq || id !== state.caseId) { return; }
      renderCase(data);
    } catch (error) {
      if (seq !== caseSeq || id !== state.caseId || error.status === 401) { return; }
      showError(caseError, error.message);
      if (!state.caseData) { $("case-badge").textContent = ""; }
    }
  }
  const caseSoon = debounce(loadCase, 100);

  function summaryRow(list, label, value) {
    list.appendChild(el("dt", null, label));
    const dd = el("dd");
    if (value instanceof Node) { dd.appendChild(value); } else {
      dd.textContent = value === null || value === undefined || value === "" ? t("unknown_value") : String(value);
    }
    list.appendChild(dd);
  }

  /** The channel, and a badge when the person cannot be reached on it (blocked the bot). */
  function channelWithReach(summary) {
    if (!summary.unreachable) { return channelLabel(summary.channel); }
    const box = el("span", null, `${channelLabel(summary.channel)} `);
    box.appendChild(el("span", "badge badge-unreachable", t("unreachable")));
    return box;
  }

  /** Who blocked the sender, why, and until when. */
  function blockedText(blocked) {
    const reason = blocked.reason_label || tOr(`block_reason_${blocked.reason}`, blocked.reason);
    const name = blocked.by || t("unknown_value");
    const until = blocked.until ? new Date(blocked.until) : null;
    if (!until || Number.isNaN(until.getTime())) { return t("blocked_permanent", { reason, name }); }
    return t("blocked_until", { time: dateTimeFormat.format(until), reason, name });
  }

  function renderSummary(data) {
    const list = $("case-summary");
    const holder = [holderText(data)];
    if (data.assigned_to) { holder.push(t("assigned_to", { name: data.assigned_to })); }
    const rows = [
      ["field_urgency", badge(data)],
      ["field_indicators", chips(indicatorLabels(data))],
      ["field_reporter", data.reporter_label || tOr(`reporter_${data.reporter}`, data.reporter)],
      ["field_language", data.language_name || data.language],
      ["field_channel", channelWithReach(data)],
      ["field_country", data.country],
      ["field_office", data.office],
      ["field_location", data.location],
      ["field_waiting", data.status === "resolved" ? null : waitingClock(data.waiting_seconds)],
      ["field_status", data.bot_form_open ? `${statusLabel(data)} · ${t("bot_form_open")}` : statusLabel(data)],
      ["field_holder", holder.join(" · ")],
    ];
    if (data.blocked) { rows.push(["field_blocked", blockedText(data.blocked)]); }
    const fragment = document.createDocumentFragment();
    rows.forEach(([key, value]) => summaryRow(fragment, t(key), value));
    list.replaceChildren(fragment);
  }

  /** The message text with its evidence spans as <mark>; offsets count code points (Python). */
  function messageText(message) {
    const body = el("p", "msg-text");
    const chars = Array.from(String(message.text || ""));
    let position = 0;
    (Array.isArray(message.highlights) ? message.highlights : []).forEach((span) => {
      const start = Math.max(0, Math.min(chars.length, Number(span.start)));
      const end = Math.max(0, Math.min(chars.length, Number(span.end)));
      if (!(start >= position && end > start)) { return; }
      if (start > position) { body.appendChild(document.createTextNode(chars.slice(position, start).join(""))); }
      const label = span.label || tOr(`indicator_${span.indicator}`, span.indicator || "");
      const mark = el("mark", "evidence");
      mark.setAttribute("data-indicator", String(span.indicator || ""));
      mark.title = label;
      mark.appendChild(document.createTextNode(chars.slice(start, end).join("")));
      mark.appendChild(hiddenText(` ${t("highlight_sr", { label })}`));
      body.appendChild(mark);
      position = end;
    });
    if (position < chars.length) { body.appendChild(document.createTextNode(chars.slice(position).join(""))); }
    return body;
  }

  function authorName(message) {
    if (message.author === "person") { return t("author_person"); }
    if (message.author === "bot") { return t("author_bot"); }
    return String(message.author || t("unknown_value"));
  }

  /** What the person shared besides words: a download link (opening it is audited), or its kind. */
  function attachmentLink(attachment) {
    const kind = tOr(`attachment_${attachment.kind}`, String(attachment.kind || ""));
    const box = el("p", "msg-attachment");
    const url = String(attachment.url || "");
    if (url.startsWith("/console/api/messages/")) {
      const link = el("a", null, t("attachment_open", { kind }));
      link.href = url;
      link.setAttribute("download", "");
      link.rel = "noopener noreferrer";
      box.appendChild(link);
    } else {
      box.textContent = t("attachment_shared", { kind });
    }
    return box;
  }

  function renderTranscript(data, sameCase) {
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 48;
    const messages = Array.isArray(data.messages) ? data.messages : [];
    const fragment = document.createDocumentFragment();
    if (!messages.length) {
      fragment.appendChild(el("li", "empty", t("transcript_empty")));
    }
    messages.forEach((message) => {
      const out = message.direction === "out";
      const item = el("li", `msg ${out ? "msg-out" : "msg-in"}`);
      if (out && message.author === "bot") { item.classList.add("msg-bot"); }
      item.setAttribute("data-message-id", String(message.id));
      const head = el("p", "msg-head");
      head.appendChild(el("span", "msg-author", authorName(message)));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(timeElement(message.at));
      if (out && message.status) {
        head.appendChild(document.createTextNode(" "));
        head.appendChild(el("span", `delivery delivery-${message.status}`,
          tOr(`msg_status_${message.status}`, message.status)));
      }
      item.appendChild(head);
      item.appendChild(messageText(message));
      if (message.attachment) { item.appendChild(attachmentLink(message.attachment)); }
      fragment.appendChild(item);
    });
    transcript.replaceChildren(fragment);
    if (!sameCase || nearBottom) { transcript.scrollTop = transcript.scrollHeight; }

    const inbound = messages.filter((m) => m.direction === "in").map((m) => Number(m.id) || 0);
    const highest = inbound.length ? Math.max(...inbound) : 0;
    const before = state.lastInbound.get(data.id);
    if (sameCase && before !== undefined && highest > before) {
      announce(polite, t("announce_message", { id: data.id }));
    }
    state.lastInbound.set(data.id, highest);
  }

  function renderNotes(data) {
    const notes = Array.isArray(data.notes) ? data.notes : [];
    const fragment = document.createDocumentFragment();
    if (!notes.length) { fragment.appendChild(el("li", "empty", t("notes_empty"))); }
    notes.forEach((note) => {
      const item = el("li", "note");
      const head = el("p", "note-head");
      head.appendChild(el("span", "note-author", note.author || t("unknown_value")));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(timeElement(note.at));
      item.appendChild(head);
      item.appendChild(el("p", "note-text", note.text || ""));
      fragment.appendChild(item);
    });
    $("notes").replaceChildren(fragment);
  }

  function renderEvents(data) {
    const events = Array.isArray(data.events) ? data.events : [];
    // Every read is audited: show a run of reads by one responder once (the latest).
    const shown = events.filter((event, index) => {
      const next = events[index + 1];
      return !(event.action === "viewed" && next && next.action === "viewed" && next.actor === event.actor);
    });
    const fragment = document.createDocumentFragment();
    shown.slice().reverse().forEach((event) => {
      const item = el("li");
      item.appendChild(timeElement(event.at));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(el("span", "event-action", tOr(`event_${event.action}`, event.action)));
      if (event.actor) { item.appendChild(document.createTextNode(` · ${event.actor}`)); }
      if (event.from && event.to && event.from !== event.to) {
        const from = tOr(`status_${event.from}`, event.from);
        const to = tOr(`status_${event.to}`, event.to);
        item.appendChild(el("span", "muted", ` · ${from} → ${to}`));
      }
      fragment.appendChild(item);
    });
    $("events").replaceChildren(fragment);
  }

  /** What the responder must know before writing: paused, erased, a caution, on hold. */
  function renderSafety(data) {
    const safety = data.safety || {};
    const banners = [];
    if (safety.paused_since) {
      banners.push(["paused", t("safety_paused", { time: clock(safety.paused_since) })]);
    }
    if (safety.erased_at) {
      banners.push(["erased", t("safety_erased", { time: clock(safety.erased_at) })]);
    }
    if (safety.impersonation_caution) { banners.push(["caution", t("safety_impersonation")]); }
    if (safety.on_hold) { banners.push(["hold", t("safety_on_hold")]); }
    const fragment = document.createDocumentFragment();
    banners.forEach(([kind, text]) => {
      const banner = el("p", `banner banner-${kind}`, text);
      banner.setAttribute("data-safety", kind);
      fragment.appendChild(banner);
    });
    $("safety-banners").replaceChildren(fragment);
  }

  function basisText(consent) {
    if (consent.basis === "consent") {
      return tOr(`basis_consent_${consent.given_by}`, String(consent.basis));
    }
    return tOr(`basis_${consent.basis}`, String(consent.basis));
  }

  const EXPORTS = [["json", "export_json", "export_json_for"], ["pdf", "export_pdf", "export_pdf_for"]];

  /** Each recipient's consent and whether it allows an export; the export links if it does. */
  function consentItem(consent, mayShare) {
    const recipient = String(consent.recipient || t("unknown_value"));
    const item = el("li", `consent ${consent.valid ? "consent-valid" : "consent-withdrawn"}`);
    item.setAttribute("data-consent-id", String(consent.id));
    const head = el("p", "consent-head");
    head.appendChild(el("strong", null, recipient));
    head.appendChild(document.createTextNode(
      ` · ${tOr(`recipient_kind_${consent.recipient_kind}`, String(consent.recipient_kind))}`));
    item.appendChild(head);
    item.appendChild(el("p", null, basisText(consent)));
    const items = (Array.isArray(consent.data) ? consent.data : []).map((d) => tOr(`data_${d}`, d));
    item.appendChild(el("p", null, t("consent_data_list", { items: items.join(", ") })));
    if (consent.reason) {
      item.appendChild(el("p", "consent-reason", t("consent_reason_text", { reason: consent.reason })));
    }
    item.appendChild(el("p", "muted", t("consent_recorded_by", {
      name: consent.recorded_by || t("unknown_value"), time: clock(consent.recorded_at),
    })));
    item.appendChild(el("p", `consent-state ${consent.valid ? "ok" : "muted"}`, consent.valid
      ? t("consent_valid")
      : t("consent_withdrawn_by", {
        name: consent.withdrawn_by || t("unknown_value"), time: clock(consent.withdrawn_at),
      })));
    if (!consent.valid || !mayShare || !consent.exports) { return item; }
    const row = el("div", "row consent-actions");
    EXPORTS.forEach(([format, key, label]) => {
      const url = String(consent.exports[format] || "");
      if (!url.startsWith("/console/api/cases/")) { return; }
      const link = el("a", `export export-${format}`, t(key));
      link.href = url;
      link.setAttribute("download", "");
      link.rel = "noopener noreferrer";
      link.setAttribute("aria-label", t(label, { recipient }));
      // The export is audited: show it in the history once the download started.
      link.addEventListener("click", () => { setTimeout(caseSoon, 1500); });
      row.appendChild(link);
    });
    const withdraw = el("button", "consent-withdraw", t("consent_withdraw"));
    withdraw.type = "button";
    withdraw.setAttribute("aria-label", t("consent_withdraw_for", { recipient }));
    withdraw.addEventListener("click", async () => {
      if (!window.confirm(t("consent_withdraw_confirm", { recipient }))) { return; }
      if (await act(post(`consents/${encodeURIComponent(consent.id)}/withdraw`, {}), "done_consent_withdrawn")) {
        consentOpen.focus();
      }
    });
    row.appendChild(withdraw);
    item.appendChild(row);
    return item;
  }

  function renderSharing(data) {
    const consents = Array.isArray(data.consents) ? data.consents : [];
    const blocked = $("sharing-blocked");
    blocked.hidden = consents.some((consent) => consent.valid);
    blocked.textContent = consents.length ? t("sharing_none_valid") : t("sharing_none");
    const fragment = document.createDocumentFragment();
    consents.forEach((consent) => fragment.appendChild(consentItem(consent, !!data.may_share)));
    $("consents").replaceChildren(fragment);
  }

  /** Enables what the case's state allows (``null``: nothing, while it loads). */
  function setControls(data) {
    const queued = !!data && data.status === "queued";
    const mine = !!data && !!data.mine;
    // A supervisor (or an admin) may release or transfer a case someone else holds.
    const oversee = !!data && data.status === "claimed" && !!data.may_oversee;
    const claim = $("claim");
    const release = $("release");
    claim.hidden = mine;
    claim.disabled = !queued;
    release.hidden = !(mine || oversee);
    release.disabled = release.hidden;
    transferButton.disabled = !(queued || mine || oversee);
    const mayBlock = !!data && !!data.may_block;
    blockButton.hidden = !mayBlock || !!data.blocked;
    $("unblock").hidden = !mayBlock || !data.blocked;
    if (blockButton.hidden) { closeBlock(false); }
    // Consent, exports and the hold: the holder (or who held it), a supervisor, an admin.
    const mayShare = !!data && !!data.may_share;
    const onHold = !!data && !!(data.safety && data.safety.on_hold);
    $("hold").hidden = !mayShare || onHold;
    $("release-hold").hidden = !mayShare || !onHold;
    consentOpen.hidden = !mayShare;
    if (!mayShare) { closeConsent(false); }
    $("resolve").disabled = !(queued || mine);
    replyText.disabled = !mine;
    replySend.disabled = !mine;
    $("reply-hint").textContent = mine ? t("reply_hint") : t("reply_claim_first");
    noteText.disabled = !data;
    $("note-add").disabled = !data;
    if (!(queued || mine)) { closeTransfer(false); }
  }

  function renderCase(data) {
    const sameCase = !!state.caseData && state.caseData.id === data.id;
    state.caseData = data;
    $("case-heading").textContent = t("case_number", { id: data.id });
    const head = $("case-badge");
    head.className = `badge urgency-${tier(data)}`;
    head.textContent = urgencyLabel(data);
    caseView.className = `case-view urgency-${tier(data)}`;
    renderSafety(data);
    renderSummary(data);
    renderTranscript(data, sameCase);
    renderNotes(data);
    renderSharing(data);
    renderEvents(data);
    setControls(data);
  }

  async function refreshAll() {
    await Promise.all([loadQueue(), loadCase()]);
  }

  /** Runs one case action; errors are shown, a 409 (the case changed) also reloads. */
  async function act(run, done) {
    const id = state.caseId;
    if (id === null) { return false; }
    showError(caseError, "");
    caseStatus.textContent = "";
    try {
      await run(id);
      if (done) { caseStatus.textContent = t(done, { id }); }
      return true;
    } catch (error) {
      if (error.status !== 401) { showError(caseError, error.message); }
      return false;
    } finally {
      await refreshAll();
    }
  }

  const post = (path, body) => (id) => api("POST", `/console/api/cases/${encodeURIComponent(id)}/${path}`, body);

  $("claim").addEventListener("click", async () => {
    if (await act(post("claim", {}), "done_claimed")) { replyText.focus(); }
  });
  $("release").addEventListener("click", async () => {
    if (await act(post("release", {}), "done_released")) { $("claim").focus(); }
  });
  $("resolve").addEventListener("click", async () => {
    const id = state.caseId;
    if (id === null || !window.confirm(t("resolve_confirm", { id }))) { return; }
    if (await act(post("resolve", {}), "done_resolved")) {
      state.drafts.delete(id);
      $("case-heading").focus();
    }
  });

  // Transfer: a small form listing responders and offices.
  function closeTransfer(focusButton) {
    transferForm.hidden = true;
    transferButton.setAttribute("aria-expanded", "false");
    if (focusButton) { transferButton.focus(); }
  }

  async function loadResponders() {
    if (state.responders && performance.now() - state.respondersAt < 60000) { return state.responders; }
    const data = await api("GET", "/console/api/responders");
    state.responders = {
      responders: Array.isArray(data.responders) ? data.responders : [],
      offices: Array.isArray(data.offices) ? data.offices : [],
    };
    state.respondersAt = performance.now();
    return state.responders;
  }

  async function openTransfer() {
    showError(caseError, "");
    let data;
    try {
      data = await loadResponders();
    } catch (error) {
      if (error.status !== 401) { showError(caseError, error.message); }
      return;
    }
    const select = $("transfer-target");
    const fragment = document.createDocumentFragment();
    const others = data.responders.filter((r) => r.username !== me.username);
    if (others.length) {
      const group = document.createElement("optgroup");
      group.label = t("transfer_responders");
      others.forEach((r) => {
        const name = r.display_name && r.display_name !== r.username
          ? `${r.display_name} (${r.username})` : r.username;
        const extra = [(r.languages || []).join(", "), (r.offices || []).join(", ")].filter(Boolean);
        const option = el("option", null, extra.length ? `${name}: ${extra.join(" · ")}` : name);
        option.value = `responder:${r.username}`;
        group.appendChild(option);
      });
      fragment.appendChild(group);
    }
    if (data.offices.length) {
      const group = document.createElement("optgroup");
      group.label = t("transfer_offices");
      data.offices.forEach((office) => {
        const option = el("option", null, t("office_code", { office }));
        option.value = `office:${office}`;
        group.appendChild(option);
      });
      fragment.appendChild(group);
    }
    select.replaceChildren(fragment);
    const nobody = !others.length && !data.offices.length;
    $("transfer-nobody").hidden = !nobody;
    select.disabled = nobody;
    $("transfer-submit").disabled = nobody;
    transferForm.hidden = false;
    transferButton.setAttribute("aria-expanded", "true");
    (nobody ? $("transfer-cancel") : select).focus();
  }

  transferButton.addEventListener("click", () => {
    if (transferForm.hidden) { openTransfer(); } else { closeTransfer(true); }
  });
  $("transfer-cancel").addEventListener("click", () => closeTransfer(true));
  transferForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("transfer-target").value || "";
    const split = value.indexOf(":");
    if (split < 0) { return; }
    const kind = value.slice(0, split);
    const target = value.slice(split + 1);
    const body = kind === "office" ? { office: target } : { responder: target };
    $("transfer-submit").disabled = true;
    const ok = await act(post("transfer", body), "done_transferred");
    $("transfer-submit").disabled = false;
    if (ok) { closeTransfer(true); }
  });

  // Block the sender: for how long and why; lift it again.
  const BLOCK_DURATIONS = ["1h", "24h", "7d", "permanent"];
  const BLOCK_REASONS = ["abuse", "spam", "testing", "impersonation", "other"];

  function fillOptions(select, codes, prefix) {
    if (select.options.length) { return; }
    codes.forEach((code) => {
      const option = el("option", null, t(`${prefix}${code}`));
      option.value = code;
      select.appendChild(option);
    });
  }

  function closeBlock(focusButton) {
    blockForm.hidden = true;
    blockButton.setAttribute("aria-expanded", "false");
    if (focusButton && !blockButton.hidden) { blockButton.focus(); }
  }

  blockButton.addEventListener("click", () => {
    if (!blockForm.hidden) { closeBlock(true); return; }
    fillOptions($("block-duration"), BLOCK_DURATIONS, "block_duration_");
    fillOptions($("block-reason"), BLOCK_REASONS, "block_reason_");
    blockForm.hidden = false;
    blockButton.setAttribute("aria-expanded", "true");
    $("block-duration").focus();
  });
  $("block-cancel").addEventListener("click", () => closeBlock(true));
  blockForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { duration: $("block-duration").value, reason: $("block-reason").value };
    $("block-submit").disabled = true;
    const ok = await act(post("block", body), "done_blocked");
    $("block-submit").disabled = false;
    if (ok) {
      closeBlock(false);
      $("unblock").focus();
    }
  });
  $("unblock").addEventListener("click", async () => {
    const id = state.caseId;
    if (id === null || !window.confirm(t("unblock_confirm", { id }))) { return; }
    if (await act(post("unblock", {}), "done_unblocked")) { blockButton.focus(); }
  });

  // Keep the case for an open investigation (beyond retention; a summary survives deletion).
  $("hold").addEventListener("click", async () => {
    if (await act(post("hold", {}), "done_hold_set")) { $("release-hold").focus(); }
  });
  $("release-hold").addEventListener("click", async () => {
    const id = state.caseId;
    if (id === null || !window.confirm(t("hold_release_confirm", { id }))) { return; }
    if (await act(post("release-hold", {}), "done_hold_released")) { $("hold").focus(); }
  });

  // Consent: who may receive the case's details, on what basis, which data.
  function consentBasis() {
    const checked = consentForm.querySelector('input[name="basis"]:checked');
    return checked ? checked.value : "consent";
  }

  function syncConsentForm() {
    const without = consentBasis() !== "consent";
    $("consent-giver").hidden = without;
    $("consent-reason-row").hidden = !without;
    $("consent-reason").required = without;
  }

  function closeConsent(focusButton) {
    consentForm.hidden = true;
    consentOpen.setAttribute("aria-expanded", "false");
    if (focusButton && !consentOpen.hidden) { consentOpen.focus(); }
  }

  consentOpen.addEventListener("click", () => {
    if (!consentForm.hidden) { closeConsent(true); return; }
    syncConsentForm();
    consentForm.hidden = false;
    consentOpen.setAttribute("aria-expanded", "true");
    consentForm.querySelector('input[name="basis"]:checked').focus();
  });
  consentForm.querySelectorAll('input[name="basis"]').forEach((radio) => {
    radio.addEventListener("change", syncConsentForm);
  });
  $("consent-cancel").addEventListener("click", () => closeConsent(true));
  consentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const basis = consentBasis();
    const body = {
      basis,
      recipient_kind: $("consent-recipient-kind").value,
      recipient: $("consent-recipient").value.trim(),
      data: Array.from(consentForm.querySelectorAll('input[name="data"]:checked')).map((box) => box.value),
    };
    if (basis === "consent") { body.given_by = $("consent-given-by").value; } else {
      body.reason = $("consent-reason").value.trim();
    }
    $("consent-submit").disabled = true;
    const ok = await act(post("consents", body), "done_consent_recorded");
    $("consent-submit").disabled = false;
    if (ok) {
      consentForm.reset();
      syncConsentForm();
      closeConsent(true);
    }
  });

  // Reply: Ctrl+Enter or the button; only the holder of the case writes to the person.
  replyText.addEventListener("input", () => {
    if (state.caseId !== null) { state.drafts.set(state.caseId, replyText.value); }
  });
  replyText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      replyForm.requestSubmit();
    }
  });
  let replying = false;
  replyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = replyText.value.trim();
    if (replying || !text || !state.caseData || !state.caseData.mine) { return; }
    replying = true;
    replySend.disabled = true;
    $("reply-hint").textContent = t("sending");
    const id = state.caseId;
    const ok = await act(post("reply", { text }), null);
    replying = false;
    if (ok) {
      state.drafts.delete(id);
      if (state.caseId === id) { replyText.value = ""; }
      announce(polite, t("done_reply"));
    }
    if (state.caseData && state.caseData.mine) {
      replySend.disabled = false;
      $("reply-hint").textContent = t("reply_hint");
      replyText.focus();
    }
  });

  // Private notes.
  noteText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      noteForm.requestSubmit();
    }
  });
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = noteText.value.trim();
    if (!text || state.caseId === null) { return; }
    $("note-add").disabled = true;
    const ok = await act(post("notes", { text }), "done_note");
    $("note-add").disabled = false;
    if (ok) { noteText.value = ""; }
  });

  function focusReply() {
    if (state.tab !== "cases") { selectTab("cases", false); }
    if (state.caseId === null) { return; }
    if (narrow.matches) { showView("case"); }
    if (!replyText.disabled) {
      replyText.focus();
    } else if (!$("claim").hidden && !$("claim").disabled) {
      $("claim").focus();
    } else {
      $("case-heading").focus();
    }
  }

  // --- keyboard shortcuts -------------------------------------------------------------------

  function typing(target) {
    if (!target || !(target instanceof Element)) { return false; }
    return target.isContentEditable || !!target.closest("input, textarea, select");
  }

  /** ``letter`` typed, whatever the keyboard layout (Thai keys fall back to the key position). */
  function pressed(event, letter) {
    const key = (event.key || "").toLowerCase();
    if (key === letter) { return true; }
    return !/^[a-z]$/.test(key) && event.code === `Key${letter.toUpperCase()}`;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") {
      if (!transferForm.hidden && transferForm.contains(document.activeElement)) {
        event.preventDefault();
        closeTransfer(true);
        return;
      }
      if (!blockForm.hidden && blockForm.contains(document.activeElement)) {
        event.preventDefault();
        closeBlock(true);
        return;
      }
      if (!consentForm.hidden && consentForm.contains(document.activeElement)) {
        event.preventDefault();
        closeConsent(true);
        return;
      }
      if (!typing(event.target) && narrow.matches && document.body.getAttribute("data-view") === "case") {
        event.preventDefault();
        backToQueue();
      }
      return;
    }
    if (typing(event.target) || event.repeat) { return; }
    if (pressed(event, "n")) {
      event.preventDefault();
      takeNext();
    } else if (pressed(event, "r")) {
      event.preventDefault();
      focusReply();
    }
  });

  // --- live updates -------------------------------------------------------------------------

  const liveStatus = $("live-status");
  let source = null;
  let retryMs = 2000;
  let wasDown = false;
  const statsSoon = debounce(() => { if (state.tab === "dashboard") { loadStats(); } }, 1500);

  function setLive(up) {
    state.live = up;
    liveStatus.hidden = up;
    if (!up) { wasDown = true; }
  }

  function eventData(event) {
    const data = parseJson(event.data, null);
    return data && typeof data === "object" ? data : {};
  }

  function connect() {
    if (leaving) { return; }
    source = new EventSource("/console/api/events");
    source.addEventListener("open", () => {
      retryMs = 2000;
      setLive(true);
      if (wasDown) {
        wasDown = false;
        queueSoon();
        caseSoon();
      }
    });
    source.addEventListener("error", () => {
      if (leaving) { return; }
      setLive(false);
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the session ended): check the session, then reconnect.
        source.close();
        const wait = retryMs;
        retryMs = Math.min(retryMs * 2, 60000);
        setTimeout(() => {
          api("GET", "/console/api/me").then(connect, (error) => {
            if (error.status !== 401) { connect(); }
          });
        }, wait);
      }
    });
    source.addEventListener("queue", (event) => {
      const data = eventData(event);
      if (data.reason === "viewed") { return; }
      queueSoon();
      if (state.caseId !== null && Number(data.case_id) === state.caseId) { caseSoon(); }
      statsSoon();
    });
    source.addEventListener("message", (event) => {
      const data = eventData(event);
      if (state.caseId !== null && Number(data.case_id) === state.caseId) { caseSoon(); }
    });
  }

  // While the stream is down, the queue is still refreshed now and then.
  setInterval(() => {
    if (!state.live && document.visibilityState === "visible") { queueSoon(); }
  }, 10000);

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { queueSoon(); caseSoon(); }
  });
  window.addEventListener("pagehide", () => { if (source) { source.close(); } });
  document.querySelector("form.logout").addEventListener("submit", () => {
    leaving = true;
    if (source) { source.close(); }
  });

  // --- dashboard: inline SVG charts ---------------------------------------------------------

  const charts = $("charts");
  let statsSeq = 0;
  let chartCount = 0;

  function svgNode(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach((name) => node.setAttribute(name, String(attrs[name])));
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function svgText(parent, x, y, text, attrs) {
    const node = svgNode("text", Object.assign({ x, y }, attrs || {}), parent);
    node.textContent = String(text);
    return node;
  }

  function chartWidth() {
    return Math.max(280, Math.min(760, (charts.clientWidth || 600) - 2));
  }

  /** A figure with a heading, an <svg role="img"> and a visually hidden table. */
  function figure(titleKey, height, rows, columns) {
    const box = el("figure", "chart");
    const caption = el("figcaption", "chart-title", t(titleKey));
    box.appendChild(caption);
    if (!rows.length) {
      box.appendChild(el("p", "empty", t("no_data")));
      return { box, svg: null };
    }
    chartCount += 1;
    const titleId = `chart-title-${chartCount}`;
    const width = chartWidth();
    const svg = svgNode("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`,
      role: "img", "aria-labelledby": titleId, class: "chart-svg",
    });
    const title = svgNode("title", { id: titleId }, svg);
    title.textContent = t(titleKey);
    box.appendChild(svg);

    const table = el("table", "visually-hidden");
    table.appendChild(el("caption", null, t(titleKey)));
    const head = el("tr");
    columns.forEach((column) => {
      const th = el("th", null, t(column));
      th.scope = "col";
      head.appendChild(th);
    });
    const thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    const tbody = el("tbody");
    rows.forEach((cells) => {
      const tr = el("tr");
      cells.forEach((cell, index) => {
        const td = el(index === 0 ? "th" : "td", null, cell);
        if (index === 0) { td.scope = "row"; }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    box.appendChild(table);
    return { box, svg, width };
  }

  function waitingChart(data) {
    const counts = data.waiting_by_urgency || {};
    const tiers = TIERS.filter((name) => Object.prototype.hasOwnProperty.call(counts, name));
    const labels = data.labels || {};
    const label = (name) => labels[name] || tOr(`urgency_${name}`, name);
    const height = 220;
    const rows = tiers.map((name) => [label(name), num(Number(counts[name]) || 0)]);
    const { box, svg, width } = figure("chart_waiting", height, rows, ["col_urgency", "col_cases"]);
    if (!svg) { return box; }
    const top = 28;
    const bottom = 36;
    const plot = height - top - bottom;
    const max = Math.max(1, ...tiers.map((name) => Number(counts[name]) || 0));
    const slot = width / tiers.length;
    const barWidth = Math.min(96, slot * 0.6);
    tiers.forEach((name, index) => {
      const value = Number(counts[name]) || 0;
      const h = Math.round((value / max) * plot);
      const x = slot * index + (slot - barWidth) / 2;
      const y = top + plot - h;
      const bar = svgNode("rect", {
        x, y, width: barWidth, height: Math.max(h, 1), rx: 3, class: `bar urgency-${name}`,
      }, svg);
      svgNode("title", {}, bar).textContent = `${label(name)}: ${num(value)}`;
      svgText(svg, x + barWidth / 2, y - 8, num(value), { "text-anchor": "middle", class: "value" });
      svgText(svg, x + barWidth / 2, height - 12, label(name), { "text-anchor": "middle", class: "axis-label" });
    });
    svgNode("line", { x1: 0, x2: width, y1: top + plot + 0.5, y2: top + plot + 0.5, class: "axis" }, svg);
    return box;
  }

  function timeToClaimChart(data) {
    const days = (Array.isArray(data.time_to_claim) ? data.time_to_claim : [])
      .filter((d) => d && d.p50 !== null && d.p50 !== undefined);
    const height = 240;
    const rows = days.map((d) => [dayLabel(d.day), num(d.n || 0), duration(d.p50), duration(d.p90 ?? d.p50)]);
    const { box, svg, width } = figure("chart_time_to_claim", height, rows,
      ["col_day", "col_claimed", "col_p50", "col_p90"]);
    if (!svg) { return box; }
    const left = 72;
    const right = 16;
    const top = 14;
    const bottom = 34;
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const max = Math.max(60, ...days.map((d) => Number(d.p90 ?? d.p50) || 0));
    const y = (value) => top + plotH - (Math.max(0, Number(value) || 0) / max) * plotH;
    const x = (index) => (days.length === 1 ? left + plotW / 2 : left + (index / (days.length - 1)) * plotW);
    for (let i = 0; i <= 4; i += 1) {
      const value = (max * i) / 4;
      const yy = Math.round(y(value)) + 0.5;
      svgNode("line", { x1: left, x2: width - right, y1: yy, y2: yy, class: i === 0 ? "axis" : "grid" }, svg);
      svgText(svg, left - 8, yy + 4, duration(value), { "text-anchor": "end", class: "axis-label" });
    }
    const every = Math.max(1, Math.ceil(days.length / Math.max(1, Math.floor(plotW / 64))));
    days.forEach((d, index) => {
      if (index % every === 0 || index === days.length - 1) {
        svgText(svg, x(index), height - 10, dayLabel(d.day), { "text-anchor": "middle", class: "axis-label" });
      }
    });
    [["p50", "col_p50"], ["p90", "col_p90"]].forEach(([key, labelKey]) => {
      const points = days.map((d, index) => `${x(index).toFixed(1)},${y(d[key] ?? d.p50).toFixed(1)}`);
      if (days.length > 1) {
        svgNode("polyline", { points: points.join(" "), class: `line line-${key}` }, svg);
      }
      days.forEach((d, index) => {
        const dot = svgNode("circle", { cx: x(index), cy: y(d[key] ?? d.p50), r: 4, class: `dot dot-${key}` }, svg);
        svgNode("title", {}, dot).textContent = `${dayLabel(d.day)}, ${t(labelKey)}: ${duration(d[key] ?? d.p50)}`;
      });
    });
    const legend = el("ul", "legend");
    [["p50", "col_p50"], ["p90", "col_p90"]].forEach(([key, labelKey]) => {
      const item = el("li");
      item.appendChild(el("span", `swatch swatch-${key}`));
      item.appendChild(document.createTextNode(t(labelKey)));
      legend.appendChild(item);
    });
    legend.setAttribute("aria-hidden", "true");
    box.insertBefore(legend, svg);
    return box;
  }

  function shorten(text, max) {
    const chars = Array.from(String(text));
    return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : chars.join("");
  }

  function horizontalChart(titleKey, columnKey, items, kind) {
    const shownItems = items.slice(0, 12);
    const rowHeight = 30;
    const height = shownItems.length * rowHeight + 8;
    const rows = items.map((item) => [item.label, num(item.count)]);
    const { box, svg, width } = figure(titleKey, height, rows, [columnKey, "col_cases"]);
    if (!svg) { return box; }
    const labelWidth = Math.min(190, Math.round(width * 0.38));
    const valueWidth = 48;
    const plot = width - labelWidth - valueWidth - 8;
    const max = Math.max(1, ...shownItems.map((item) => item.count));
    shownItems.forEach((item, index) => {
      const yy = 4 + index * rowHeight;
      const label = svgText(svg, labelWidth - 8, yy + 19, shorten(item.label, Math.floor(labelWidth / 8)),
        { "text-anchor": "end", class: "axis-label" });
      svgNode("title", {}, label).textContent = item.label;
      const w = Math.max(2, Math.round((item.count / max) * plot));
      const bar = svgNode("rect", { x: labelWidth, y: yy + 4, width: w, height: rowHeight - 10, rx: 3, class: `hbar hbar-${kind}` }, svg);
      svgNode("title", {}, bar).textContent = `${item.label}: ${num(item.count)}`;
      svgText(svg, labelWidth + w + 6, yy + 19, num(item.count), { class: "value" });
    });
    return box;
  }

  function unknownOr(value) {
    return !value || value === "?" ? t("unknown_value") : String(value);
  }

  function renderStats(data) {
    state.stats = data;
    chartCount = 0;
    const list = (value) => (Array.isArray(value) ? value : []);
    const fragment = document.createDocumentFragment();
    fragment.appendChild(waitingChart(data));
    fragment.appendChild(timeToClaimChart(data));
    fragment.appendChild(horizontalChart("chart_by_indicator", "col_indicator",
      list(data.by_indicator).map((i) => ({ label: i.label || tOr(`indicator_${i.id}`, i.id), count: Number(i.count) || 0 })),
      "indicator"));
    fragment.appendChild(horizontalChart("chart_by_country", "col_country",
      list(data.by_country).map((i) => ({ label: unknownOr(i.country), count: Number(i.count) || 0 })),
      "country"));
    fragment.appendChild(horizontalChart("chart_by_language", "col_language",
      list(data.by_language).map((i) => ({
        label: unknownOr(i.name && i.name !== "?" ? i.name : i.language), count: Number(i.count) || 0,
      })),
      "language"));
    charts.replaceChildren(fragment);
  }

  async function loadStats() {
    const seq = ++statsSeq;
    if (!state.stats) { charts.replaceChildren(el("p", "empty", t("loading"))); }
    try {
      const data = await api("GET", "/console/api/stats");
      if (seq !== statsSeq) { return; }
      showError($("dashboard-error"), "");
      renderStats(data || {});
    } catch (error) {
      if (seq !== statsSeq || error.status === 401) { return; }
      showError($("dashboard-error"), error.message);
      if (!state.stats) { charts.replaceChildren(); }
    }
  }

  let lastWidth = 0;
  window.addEventListener("resize", debounce(() => {
    const width = chartWidth();
    if (state.stats && state.tab === "dashboard" && width !== lastWidth) {
      lastWidth = width;
      renderStats(state.stats);
    }
  }, 200));

  // --- accounts (admins only) ---------------------------------------------------------------

  const ROLES = ["responder", "supervisor", "admin"];
  const accountsError = $("accounts-error");
  const accountsStatus = $("accounts-status");
  const accountForm = $("account-form");
  let accountsSeq = 0;

  const codes = (text) => String(text || "").split(/[\s,;]+/).map((c) => c.trim()).filter(Boolean);
  const adminPath = (username, action) =>
    `/console/api/admin/accounts/${encodeURIComponent(username)}${action ? `/${action}` : ""}`;

  function roleSelect(value, select) {
    const node = select || el("select");
    ROLES.forEach((role) => {
      const option = el("option", null, t(`role_${role}`));
      option.value = role;
      option.defaultSelected = role === value;
      node.appendChild(option);
    });
    return node;
  }

  function labelled(node, field, username) {
    node.setAttribute("aria-label", t("account_field_for", { field: t(field), username }));
    return node;
  }

  function showPassword(username, password) {
    $("account-password-text").textContent = t("account_password_once", { username });
    $("account-password-value").textContent = password;
    $("account-password").hidden = false;
    $("account-password-value").focus();
  }

  /** Runs one account change; shows its outcome and reloads the list. */
  async function adminCall(run, done, username) {
    showError(accountsError, "");
    accountsStatus.textContent = "";
    $("account-password").hidden = true;
    try {
      const data = await run();
      if (done) { accountsStatus.textContent = t(done, { username }); }
      return data;
    } catch (error) {
      if (error.status !== 401) { showError(accountsError, error.message); }
      return null;
    } finally {
      loadAccounts();
    }
  }

  function accountRow(account) {
    const username = account.username;
    const row = el("tr");
    row.setAttribute("data-username", username);
    const who = el("th");
    who.scope = "row";
    who.appendChild(el("span", "account-name", account.display_name || username));
    who.appendChild(el("span", "muted account-user", username));
    row.appendChild(who);

    const role = labelled(roleSelect(account.role), "col_role", username);
    const languages = labelled(el("input"), "col_languages", username);
    languages.type = "text";
    languages.value = (account.languages || []).join(", ");
    languages.placeholder = t("account_all");
    const offices = labelled(el("input"), "col_offices", username);
    offices.type = "text";
    offices.value = (account.offices || []).join(", ");
    offices.placeholder = t("account_all");
    [role, languages, offices].forEach((control) => {
      const cell = el("td");
      cell.appendChild(control);
      row.appendChild(cell);
    });

    const states = [t(account.active ? "account_active" : "account_inactive")];
    if (account.locked) { states.push(t("account_locked")); }
    row.appendChild(el("td", account.active ? null : "muted", states.join(" · ")));
    const login = el("td");
    login.appendChild(account.last_login_at ? timeElement(account.last_login_at) : el("span", "muted", t("account_never")));
    row.appendChild(login);

    const actionsCell = el("td", "account-actions");
    const button = (key, handler, primary) => {
      const node = el("button", primary ? "primary" : null, t(key));
      node.type = "button";
      labelled(node, key, username);
      node.addEventListener("click", handler);
      actionsCell.appendChild(node);
      return node;
    };
    button("account_save", () => adminCall(() => api("POST", adminPath(username), {
      role: role.value, languages: codes(languages.value), offices: codes(offices.value),
    }), "done_account_saved", username), true);
    if (account.active) {
      button("account_deactivate", () => {
        if (!window.confirm(t("deactivate_confirm", { username }))) { return; }
        adminCall(() => api("POST", adminPath(username), { active: false }), "done_account_saved", username);
      });
    } else {
      button("account_reactivate", () =>
        adminCall(() => api("POST", adminPath(username), { active: true }), "done_account_saved", username));
    }
    if (account.locked) {
      button("account_unlock", () =>
        adminCall(() => api("POST", adminPath(username, "unlock"), {}), "done_account_saved", username));
    }
    button("account_new_password", async () => {
      if (!window.confirm(t("password_confirm", { username }))) { return; }
      const data = await adminCall(() => api("POST", adminPath(username, "password"), {}), null, username);
      if (data && data.password) { showPassword(username, data.password); }
    });
    row.appendChild(actionsCell);
    return row;
  }

  function accountEventText(event) {
    const detail = event.detail || {};
    const parts = [event.actor, tOr(`account_event_${event.action}`, event.action), event.target];
    const shown = (value) => (Array.isArray(value) ? (value.join(", ") || t("account_all"))
      : tOr(`role_${value}`, String(value)));
    if (Object.prototype.hasOwnProperty.call(detail, "from")) {
      parts.push(`${shown(detail.from)} → ${shown(detail.to)}`);
    } else if (detail.role) {
      parts.push(shown(detail.role));
    }
    return parts.join(" · ");
  }

  function renderAccounts(list, events) {
    const fragment = document.createDocumentFragment();
    list.forEach((account) => fragment.appendChild(accountRow(account)));
    $("account-rows").replaceChildren(fragment);
    const history = document.createDocumentFragment();
    if (!events.length) { history.appendChild(el("li", "empty", t("account_events_empty"))); }
    events.forEach((event) => {
      const item = el("li");
      item.appendChild(timeElement(event.at));
      item.appendChild(document.createTextNode(` ${accountEventText(event)}`));
      history.appendChild(item);
    });
    $("account-events").replaceChildren(history);
  }

  async function loadAccounts() {
    const seq = ++accountsSeq;
    try {
      const [listed, audit] = await Promise.all([
        api("GET", "/console/api/admin/accounts"), api("GET", "/console/api/admin/events"),
      ]);
      if (seq !== accountsSeq) { return; }
      renderAccounts(Array.isArray(listed.accounts) ? listed.accounts : [],
        Array.isArray(audit.events) ? audit.events : []);
    } catch (error) {
      if (seq !== accountsSeq || error.status === 401) { return; }
      showError(accountsError, error.message);
    }
  }

  if (tabs.accounts) {
    roleSelect("responder", $("account-role"));
    accountForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = $("account-username").value.trim().toLowerCase();
      $("account-create").disabled = true;
      const data = await adminCall(() => api("POST", "/console/api/admin/accounts", {
        username,
        display_name: $("account-name").value.trim(),
        role: $("account-role").value,
        languages: codes($("account-languages").value),
        offices: codes($("account-offices").value),
      }), "done_account_created", username);
      $("account-create").disabled = false;
      if (data && data.password) {
        accountForm.reset();
        showPassword(username, data.password);
      }
    });
  }

  // --- start ----------------------------------------------------------------------------------

  setControls(null);
  $("reply-hint").textContent = t("reply_claim_first");
  loadQueue();
  connect();
})();
