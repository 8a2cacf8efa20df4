// The demo page: jobs over WebSockets, how each one closed, and what to do next.
//
// The advice is computed from the server's reconnect policy, fetched from /advice.json
// (ws_close_policy.reconnect.advice_table): `advise` below follows the same rules as
// advise_reconnect in Python, and a test checks that they agree, jitter windows included.

// What to do after a close with `code` (null: no close frame) before attempt `attempt`:
// {action, window: [low, high] seconds, fixed (the delay without jitter), why}.
export function advise(table, code, attempt) {
  const seen = code === null ? 1006 : code;
  let action;
  let immediate = false;
  let reading;
  const named = table.actions[String(seen)];
  if (named !== undefined) {
    action = named;
    reading = `${table.profile}: ${seen} means ${named.replace("_", " ")}`;
  } else if (seen >= 3000 && seen <= 4999) {
    const band = table.bands.find((b) => b.first <= seen && seen <= b.last);
    if (band !== undefined) {
      ({ action, immediate } = band);
      reading = `band ${band.first}-${band.last}`;
    } else {
      action = table.private_default;
      reading = "unlisted private code";
    }
  } else {
    action = table.invalid;
    reading = "not a valid close code, treated as 1006";
  }
  const stop = (why) => ({ action: "stop", window: [0, 0], fixed: 0, why });
  if (action === "stop") return stop(reading);
  if (attempt >= table.max_attempts) return stop(`gave up after ${table.max_attempts} attempts`);
  if (action === "retry" && table.restart_codes.includes(seen)) {
    const [low, high] = table.restart_delay;
    const why = `${reading}, service restarting: ${low}-${high} s`;
    return { action, window: [low, high], fixed: low, why };
  }
  if (immediate || action !== "retry") {
    return { action, window: [0, table.base], fixed: 0, why: reading };
  }
  const ceiling = Math.min(table.cap, table.base * table.factor ** attempt);
  const why = `${reading}, attempt ${attempt + 1} of ${table.max_attempts}, up to ${ceiling} s`;
  return { action, window: [0, ceiling], fixed: ceiling, why };
}

// The delay to wait: uniform in the advice's window (full jitter), or its fixed delay.
export function delayOf(advice, table, random = Math.random) {
  if (table.jitter === "none") return advice.fixed;
  const [low, high] = advice.window;
  return low + (high - low) * random();
}

// The state one client keeps across its connections, as Reconnector does in Python.
export class Reconnector {
  constructor(table, stableAfter = 10) {
    this.table = table;
    this.stableAfter = stableAfter;
    this.attempt = 0;
    this.refreshing = false;
    this.openedAt = null;
  }

  onOpen() {
    this.openedAt = performance.now();
  }

  onClose(code) {
    if (this.openedAt !== null && performance.now() - this.openedAt >= this.stableAfter * 1000) {
      this.attempt = 0;
      this.refreshing = false;
    }
    this.openedAt = null;
    const advice = advise(this.table, code, this.attempt);
    if (advice.action === "refresh_credentials") {
      if (this.refreshing) {
        const why = "credentials refused again on the next connection";
        return { action: "stop", window: [0, 0], fixed: 0, why };
      }
      this.refreshing = true;
    } else {
      this.refreshing = false;
    }
    if (advice.action !== "stop") this.attempt += 1;
    return advice;
  }
}

// --- the page -----------------------------------------------------------------------------

const NEVER_OPENED =
  "The connection closed before it opened. A browser cannot read the HTTP status of a " +
  "refused handshake (such as 401 for a bad token): it only sees 1006. The server may " +
  "also be unreachable.";

class Job {
  constructor(kind, page) {
    this.page = page;
    this.id = `${kind}-${Math.random().toString(16).slice(2, 10)}`;
    this.summary = false;
    this.reconnector = new Reconnector(page.table, page.table.stable_after);
    this.card = page.template.content.firstElementChild.cloneNode(true);
    this.card.dataset.job = this.id;
    this.card.querySelector(".name").textContent = this.id;
    this.card.querySelector(".cancel").onclick = () => this.send({ type: "cancel" });
    this.card.querySelector(".expire").onclick = () =>
      this.send({ type: "refresh_token", token: "expired-token" });
    page.list.prepend(this.card);
    this.connect();
  }

  connect() {
    const token = encodeURIComponent(this.page.token.value);
    const summary = this.summary ? "&summary=1" : "";
    this.opened = false;
    this.show("connecting", "connecting", "", "");
    this.ws = new WebSocket(`${this.page.base}/jobs/${this.id}?token=${token}${summary}`);
    this.ws.onopen = () => {
      this.opened = true;
      this.reconnector.onOpen();
      this.show("open", "open", "", "");
    };
    this.ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    this.ws.onclose = (event) => this.closed(event);
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  receive(message) {
    const bar = this.card.querySelector("progress");
    const progress = message.payload && message.payload.progress;
    if (message.type === "job_progress" && typeof progress === "number") bar.value = progress;
    if (message.type === "job_progress" && progress === null) bar.removeAttribute("value");
    if (message.type === "job_complete") bar.value = 1;
    this.card.dataset.messages = String(Number(this.card.dataset.messages || 0) + 1);
  }

  closed(event) {
    const bar = this.card.querySelector("progress");
    if (!bar.hasAttribute("value")) bar.value = 0; // a slow job's bar stops moving
    const reason = event.reason ? ` '${event.reason}'` : " (no reason)";
    this.card.dataset.code = String(event.code);
    this.card.querySelector(".close").textContent = `${event.code}${reason}`;
    const explain = !this.opened && event.code === 1006 ? NEVER_OPENED : "";
    const advice = this.reconnector.onClose(event.code);
    this.card.dataset.action = advice.action;
    this.card.dataset.attempt = String(this.reconnector.attempt);
    if (advice.action === "stop") {
      const state = event.code === 1000 || event.code === 1001 ? "done" : "stopped";
      this.show(state, "closed", `no reconnect (${advice.why})`, explain);
      return;
    }
    const delay = delayOf(advice, this.page.table);
    this.card.dataset.delay = delay.toFixed(3);
    if (advice.action === "reduce_payload") this.summary = true;
    const doing = {
      retry: "retry",
      refresh_credentials: "refresh the credentials, then reconnect",
      reduce_payload: "ask for a summary, then reconnect",
    }[advice.action];
    this.countdown(delay, doing, advice.why, explain);
  }

  countdown(delay, doing, why, explain) {
    const until = performance.now() + delay * 1000;
    const tick = () => {
      const left = Math.max(0, (until - performance.now()) / 1000);
      const when = left > 0 ? `in ${left.toFixed(1)} s` : "now";
      this.show("waiting", "waiting", `${doing} ${when} (${why})`, explain);
      if (left > 0) {
        this.timer = setTimeout(tick, 100);
      } else {
        this.reconnect();
      }
    };
    tick();
  }

  async reconnect() {
    if (this.card.dataset.action === "refresh_credentials") {
      const response = await fetch("/token");
      this.page.token.value = (await response.json()).token;
    }
    this.card.dataset.reconnects = String(Number(this.card.dataset.reconnects || 0) + 1);
    this.connect();
  }

  show(state, label, advice, explain) {
    this.card.dataset.state = state;
    this.card.querySelector(".state").textContent = label;
    this.card.querySelector(".advice").textContent = advice;
    this.card.querySelector(".explain").textContent = explain;
  }
}

async function start() {
  const table = await (await fetch("/advice.json")).json();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const page = {
    table,
    base: `${scheme}//${location.host}`,
    list: document.getElementById("jobs"),
    template: document.getElementById("job"),
    token: document.getElementById("token"),
  };
  page.token.value = new URLSearchParams(location.search).get("token") ?? "demo-token";
  document.getElementById("profile").textContent = table.profile;
  for (const button of document.querySelectorAll("[data-start]")) {
    button.onclick = () => new Job(button.dataset.start, page);
  }
  document.body.dataset.ready = "true";
}

if (typeof document !== "undefined") start();
