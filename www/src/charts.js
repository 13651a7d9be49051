// Chart.js line charts as the pages draw them: linear x axis with whole-number ticks, no
// animation (the numbers change as fast as the user drags), legend below, a label wider than
// the chart wrapped onto rows of its own (a phone would otherwise cut it off at both ends).
import {
  Chart, LineController, LineElement, PointElement, LinearScale, Legend, Tooltip,
} from 'chart.js';
import { toFont } from 'chart.js/helpers';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip);

/** `text` broken at spaces into lines no wider than `room` pixels as `ctx` measures them. */
function wrapText(ctx, text, room) {
  const lines = [];
  let line = '';
  for (const word of String(text).split(' ')) {
    const longer = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(longer).width > room) {
      lines.push(line);
      line = word;
    } else {
      line = longer;
    }
  }
  lines.push(line);
  return lines;
}

/**
 * The default legend items, where a label is wider than the chart (a phone) split into one
 * item a line: the first keeps its box, the rest have none, and each claims the whole width
 * so that Chart.js (whose bottom legend lays out one-line items in rows) gives every line a
 * row of its own. The text is drawn from the one-element array; the row layout measures its
 * String(), which is padded out to the full width. A click on any line toggles the dataset.
 */
function wrappedLegendLabels(chart) {
  const items = Legend.defaults.labels.generateLabels(chart);
  const labels = chart.options.plugins.legend.labels;
  const font = toFont(labels.font);
  const boxWidth = labels.boxWidth ?? font.size;
  const room = (chart.legend?.maxWidth || chart.width) - boxWidth - font.size / 2 - 2 * labels.padding - 2;
  const { ctx } = chart;
  ctx.save();
  ctx.font = font.string;
  const fullRow = (line) => {
    const space = ctx.measureText(' ').width || 1;
    const pad = ' '.repeat(Math.max(0, Math.floor((room - ctx.measureText(line).width) / space)));
    return Object.assign([line], { toString: () => line + pad });
  };
  const out = [];
  for (const item of items) {
    if (ctx.measureText(item.text).width <= room) {
      out.push(item);
      continue;
    }
    wrapText(ctx, item.text, room).forEach((line, i) => {
      out.push(i === 0 ? { ...item, text: fullRow(line) } : {
        ...item, text: fullRow(line), fillStyle: 'rgba(0, 0, 0, 0)', strokeStyle: 'rgba(0, 0, 0, 0)', lineWidth: 0,
      });
    });
  }
  ctx.restore();
  return out;
}

/** Draws `datasets` on `canvas`, replacing `previous` (a chart or null); returns the chart. */
export function lineChart(canvas, previous, datasets, { x, y, yMin = 0, yMax } = {}) {
  previous?.destroy();
  return new Chart(canvas, {
    type: 'line',
    data: { datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: x }, ticks: { precision: 0 } },
        y: { title: { display: true, text: y }, min: yMin, max: yMax },
      },
      plugins: { legend: { position: 'bottom', labels: { generateLabels: wrappedLegendLabels } } },
    },
  });
}
