// Chart.js line charts as the pages draw them: linear x axis with whole-number ticks, no
// animation (the numbers change as fast as the user drags), legend below.
import {
  Chart, LineController, LineElement, PointElement, LinearScale, Legend, Tooltip,
} from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip);

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
      plugins: { legend: { position: 'bottom' } },
    },
  });
}
