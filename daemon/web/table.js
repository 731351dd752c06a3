// A virtualised table: only the rows in view (plus a few either side) are
// in the DOM, drawn from a pool of row elements, so 1,000 or 10,000 rows
// cost the same to scroll and to update. Data changes only mark the table
// dirty; it redraws at most once per animation frame, whatever the number
// of changes in between.

import { h } from "./dom.js";

const OVERSCAN = 6;

export class VirtualTable {
  /**
   * @param {object} o
   * @param {{key: string, title: string, width: string, cell: (row) => (string|{text: string, cls?: string, title?: string})}[]} o.columns
   * @param {(row) => string} o.rowKey  stable identity (data-key)
   * @param {(row) => string} [o.rowClass]
   * @param {(row) => void} [o.onClick]
   * @param {number} [o.rowHeight]
   * @param {string} [o.empty]  text when there are no rows
   */
  constructor({ columns, rowKey, rowClass = () => "", onClick = null, rowHeight = 30, empty = "Nothing to show." }) {
    this.columns = columns;
    this.rowKey = rowKey;
    this.rowClass = rowClass;
    this.onClick = onClick;
    this.rowHeight = rowHeight;
    this.rows = [];
    this.pool = [];
    this.frame = 0;
    this.draws = 0;
    const template = columns.map((c) => c.width || "1fr").join(" ");
    this.header = h(
      "div",
      { class: "vt-head", role: "row" },
      columns.map((c) => h("div", { class: `vt-cell c-${c.key}`, role: "columnheader" }, c.title)),
    );
    this.header.style.gridTemplateColumns = template;
    this.template = template;
    this.spacer = h("div", { class: "vt-spacer" });
    this.body = h("div", { class: "vt-rows", role: "rowgroup" });
    this.emptyEl = h("div", { class: "vt-empty" }, empty);
    this.viewport = h("div", { class: "vt-viewport", onscroll: () => this.invalidate() }, this.spacer, this.body, this.emptyEl);
    this.el = h("div", { class: "vt", role: "table" }, this.header, this.viewport);
    if (onClick) {
      this.body.addEventListener("click", (e) => {
        const rowEl = e.target.closest(".vt-row");
        if (rowEl && rowEl.rowRef) this.onClick(rowEl.rowRef);
      });
    }
    new ResizeObserver(() => this.invalidate()).observe(this.viewport);
  }

  /** New rows (already filtered and sorted). */
  setRows(rows) {
    this.rows = rows;
    this.invalidate();
  }

  /** Redraw at the next animation frame (once, however often called). */
  invalidate() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    this.draws += 1;
    const n = this.rows.length;
    const rh = this.rowHeight;
    this.spacer.style.height = `${n * rh}px`;
    // Keep the header's columns over the rows' when a scrollbar takes width.
    const gutter = `${this.viewport.offsetWidth - this.viewport.clientWidth}px`;
    if (this.header.style.paddingRight !== gutter) this.header.style.paddingRight = gutter;
    this.emptyEl.hidden = n > 0;
    const top = this.viewport.scrollTop;
    const visible = Math.ceil((this.viewport.clientHeight || 600) / rh);
    const first = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const last = Math.min(n, first + visible + 2 * OVERSCAN);
    this.body.style.transform = `translateY(${first * rh}px)`;
    const count = last - first;
    while (this.pool.length < count) {
      const cells = this.columns.map((c) => h("div", { class: `vt-cell c-${c.key}`, role: "cell" }));
      const rowEl = h("div", { class: "vt-row", role: "row" }, cells);
      rowEl.style.gridTemplateColumns = this.template;
      rowEl.style.height = `${rh}px`;
      this.pool.push(rowEl);
    }
    const children = this.body.children;
    for (let i = 0; i < count; i++) {
      const row = this.rows[first + i];
      const rowEl = this.pool[i];
      if (children[i] !== rowEl) this.body.append(rowEl);
      rowEl.rowRef = row;
      const key = this.rowKey(row);
      if (rowEl.dataset.key !== key) rowEl.dataset.key = key;
      const cls = `vt-row ${this.rowClass(row)}`;
      if (rowEl.className !== cls) rowEl.className = cls;
      this.columns.forEach((c, j) => {
        const v = c.cell(row);
        const cellEl = rowEl.children[j];
        const text = typeof v === "object" && v !== null ? v.text : v;
        const s = text === undefined || text === null ? "" : String(text);
        // Only touch what changed: most cells of most rows stay the same.
        if (cellEl.textContent !== s) cellEl.textContent = s;
        const want = `vt-cell c-${c.key}${v && v.cls ? " " + v.cls : ""}`;
        if (cellEl.className !== want) cellEl.className = want;
        const title = (v && v.title) || (s.length > 24 ? s : "");
        if (cellEl.title !== title) cellEl.title = title;
      });
    }
    while (this.body.children.length > count) this.body.lastChild.remove();
  }
}
