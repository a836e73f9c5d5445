// The server mode's timeline: SelectSeries points as an area chart on a
// canvas. Dragging selects a time range (reported through onSelect); in
// comparison mode two selections (left, right) are shown.

import { fitCanvas } from "./canvas.js";
import { formatValue } from "./format.js";

const HEIGHT = 110;
const AXIS = 18;
const LEFT_COLOR = "rgba(52, 120, 246, 0.22)";
const RIGHT_COLOR = "rgba(230, 120, 30, 0.25)";

export class Timeline {
  constructor(canvas, { onSelect, onClear }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onSelect = onSelect;
    this.onClear = onClear;
    this.points = [];
    this.range = [0, 1];
    this.step = 0;
    this.selections = {};
    this.unit = "";
    this.drag = null;
    canvas.addEventListener("mousedown", (e) => this.down(e));
    window.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", (e) => this.up(e));
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  /// `points`: [[timestampMs, value]] sorted, one per `stepMs`; `range`: [startMs, endMs].
  set(points, range, stepMs, unit) {
    this.points = points;
    this.step = stepMs;
    this.range = range;
    this.unit = unit;
    this.draw();
  }

  /// `which`: "main" | "left" | "right"; `sel`: [startMs, endMs] or null.
  select(which, sel) {
    if (sel) this.selections[which] = sel;
    else delete this.selections[which];
    this.draw();
  }

  xOf(t, width) {
    const [a, b] = this.range;
    return ((t - a) / (b - a || 1)) * width;
  }

  tOf(x, width) {
    const [a, b] = this.range;
    return a + (Math.min(Math.max(x, 0), width) / width) * (b - a);
  }

  draw() {
    const canvas = this.canvas;
    const ctx = this.ctx;
    const width = Math.max(100, canvas.parentElement.clientWidth);
    fitCanvas(canvas, ctx, width, HEIGHT);
    this.width = width;
    const plotH = HEIGHT - AXIS;
    ctx.fillStyle = "#fafbfc";
    ctx.fillRect(0, 0, width, plotH);
    const max = this.points.reduce((m, p) => Math.max(m, p[1]), 0);
    if (this.points.length) {
      // One bar per step: profiles are discrete, and a line would invent
      // values between two far-apart points.
      const w = Math.max(2, this.xOf(this.range[0] + this.step, width) - 1);
      ctx.fillStyle = "rgb(72, 170, 100)";
      for (const [t, v] of this.points) {
        const h = Math.max(1, (v / (max || 1)) * (plotH - 14));
        ctx.fillRect(this.xOf(t, width), plotH - h, w, h);
      }
      ctx.fillStyle = "#555";
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "top";
      ctx.fillText(`max ${formatValue(max, this.unit)}`, 6, 3);
    } else {
      ctx.fillStyle = "#888";
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillText("No data in this time range", 10, plotH / 2);
    }
    const colors = { main: LEFT_COLOR, left: LEFT_COLOR, right: RIGHT_COLOR };
    for (const [which, [a, b]] of Object.entries(this.selections)) {
      const x0 = this.xOf(a, width);
      const x1 = this.xOf(b, width);
      ctx.fillStyle = colors[which];
      ctx.fillRect(x0, 0, x1 - x0, plotH);
      ctx.strokeStyle = which === "right" ? "rgb(200, 100, 20)" : "rgb(52, 120, 246)";
      ctx.strokeRect(x0 + 0.5, 0.5, x1 - x0 - 1, plotH - 1);
    }
    if (this.drag && Math.abs(this.drag.x1 - this.drag.x0) > 1) {
      ctx.fillStyle = "rgba(0,0,0,0.12)";
      ctx.fillRect(Math.min(this.drag.x0, this.drag.x1), 0, Math.abs(this.drag.x1 - this.drag.x0), plotH);
    }
    this.drawAxis(ctx, width, plotH);
  }

  drawAxis(ctx, width, plotH) {
    const [a, b] = this.range;
    ctx.strokeStyle = "#d0d4da";
    ctx.beginPath();
    ctx.moveTo(0, plotH + 0.5);
    ctx.lineTo(width, plotH + 0.5);
    ctx.stroke();
    ctx.fillStyle = "#555";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    const span = b - a;
    const ticks = Math.max(2, Math.floor(width / 110));
    const withDate = span > 86400e3;
    for (let i = 0; i <= ticks; i++) {
      const t = a + (span * i) / ticks;
      const d = new Date(t);
      const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
      const label = withDate ? `${d.getMonth() + 1}/${d.getDate()} ${hm}` : hm;
      const x = this.xOf(t, width);
      const tw = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(Math.max(0, x - tw / 2), width - tw), plotH + 4);
    }
  }

  down(e) {
    if (e.button !== 0) return;
    const x = e.clientX - this.canvas.getBoundingClientRect().left;
    this.drag = { x0: x, x1: x };
    e.preventDefault();
  }

  move(e) {
    if (!this.drag) return;
    this.drag.x1 = e.clientX - this.canvas.getBoundingClientRect().left;
    this.draw();
  }

  up() {
    if (!this.drag) return;
    const { x0, x1 } = this.drag;
    this.drag = null;
    this.draw();
    if (Math.abs(x1 - x0) < 3) return this.onClear();
    const a = this.tOf(Math.min(x0, x1), this.width);
    const b = this.tOf(Math.max(x0, x1), this.width);
    this.onSelect([Math.round(a), Math.round(b)]);
  }
}
