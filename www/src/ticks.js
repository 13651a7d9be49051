// Round tick positions for a time axis; shared by the page (to draw) and the worker
// (to format the labels with latentlab's formatter).

const TICK_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600,
  12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400,
  90 * 86400, 180 * 86400, 365 * 86400, 730 * 86400, 5 * 365 * 86400, 10 * 365 * 86400,
  20 * 365 * 86400, 50 * 365 * 86400, 100 * 365 * 86400,
];

/** Tick positions in seconds from 0 to the first round tick at or past `end`. */
export function timeTicks(end, maxTicks = 6) {
  if (!(end > 0)) return [0, 1];
  const step = TICK_STEPS.find((s) => Math.ceil(end / s) <= maxTicks) ?? end / maxTicks;
  const count = Math.max(1, Math.ceil(end / step - 1e-9));
  return Array.from({ length: count + 1 }, (_, i) => i * step);
}

