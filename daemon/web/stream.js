// The live stream (/api/v1/events/stream, Server-Sent Events) read with
// fetch() and a ReadableStream, not EventSource: EventSource cannot send
// an Authorization header, and a token in the URL would land in logs.
// On a drop it reconnects with Last-Event-ID (the seq of the last event
// seen), so nothing is skipped or repeated; waits grow from 1 s to 15 s.

import { ApiError, authHeaders } from "./api.js";

export class EventStream {
  /**
   * @param {string} query  e.g. "?plan=ID&since=ISO" (no secret in it)
   * @param {(ev: object) => void} onEvent  each event's JSON (with .seq)
   * @param {(state: string, detail?: any) => void} onState  "connecting" | "live" | "retrying" | "stopped"
   */
  constructor(query, onEvent, onState = () => {}) {
    this.query = query;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
    this.delay = 1000;
    this.connects = 0;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.onState("stopped");
  }

  async loop() {
    while (!this.stopped) {
      this.controller = new AbortController();
      this.onState("connecting");
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (this.lastId !== null) headers["Last-Event-ID"] = String(this.lastId);
        const resp = await fetch(`/api/v1/events/stream${this.query}`, {
          headers,
          cache: "no-store",
          signal: this.controller.signal,
        });
        if (!resp.ok) {
          const body = await resp.json().catch(() => ({}));
          throw new ApiError(resp.status, body);
        }
        this.connects += 1;
        this.delay = 1000;
        this.onState("live", { reconnected: this.connects > 1 });
        await this.read(resp.body);
      } catch (e) {
        if (this.stopped) return;
        // A refused token or a vanished plan will not get better by retrying.
        if (e instanceof ApiError && [400, 401, 403, 404].includes(e.status)) {
          this.onState("failed", e);
          return;
        }
      }
      if (this.stopped) return;
      this.onState("retrying", { inMs: this.delay });
      await new Promise((r) => setTimeout(r, this.delay));
      this.delay = Math.min(this.delay * 2, 15000);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        this.dispatch(block);
      }
    }
  }

  dispatch(block) {
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null) this.lastId = id;
    if (data.length === 0) return;
    let ev;
    try {
      ev = JSON.parse(data.join("\n"));
    } catch {
      return; // not ours to show; the next event still counts
    }
    this.onEvent(ev);
  }
}
