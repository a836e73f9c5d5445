// Human-readable values for a profile's sample unit.

const TIME = [
  [86400e9, "d"],
  [3600e9, "h"],
  [60e9, "min"],
  [1e9, "s"],
  [1e6, "ms"],
  [1e3, "µs"],
  [1, "ns"],
];
const BYTES = [
  [2 ** 40, "TiB"],
  [2 ** 30, "GiB"],
  [2 ** 20, "MiB"],
  [2 ** 10, "KiB"],
  [1, "B"],
];
const COUNT = [
  [1e12, "T"],
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

function scaled(v, scale) {
  for (const [div, suffix] of scale) {
    if (Math.abs(v) >= div) return `${trim(v / div)} ${suffix}`;
  }
  return null;
}

function trim(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function formatValue(v, unit) {
  if (!Number.isFinite(v)) return String(v);
  switch (unit) {
    case "nanoseconds":
      return v === 0 ? "0" : scaled(v, TIME);
    case "microseconds":
      return v === 0 ? "0" : scaled(v * 1e3, TIME);
    case "milliseconds":
      return v === 0 ? "0" : scaled(v * 1e6, TIME);
    case "seconds":
      return v === 0 ? "0" : scaled(v * 1e9, TIME);
    case "bytes":
      return scaled(v, BYTES) || "0 B";
    default:
      return scaled(v, COUNT) || String(v);
  }
}

export function percent(part, whole) {
  if (!whole) return "0%";
  const p = (part / whole) * 100;
  return `${p >= 10 || p === 0 ? p.toFixed(1) : p.toPrecision(2)}%`;
}

export function formatBytes(n) {
  return formatValue(n, "bytes");
}

export function groupDigits(n) {
  return Math.round(n).toLocaleString("en-US");
}
