// The tinyBenchmarks page's worker operations: the paper's held-out evaluation and a fitted
// benchmark (anchors, λ) on a response matrix of real retrieval configurations, and one
// configuration's estimate from its anchor answers.
import { fitTinyBenchmark, estimateTiny, tinyHoldout } from 'latentlab';

/** The response matrix of `data` (rows of '0'/'1' strings) as a Float32Array. */
function matrix(data) {
  const models = data.responses.length;
  const items = data.items.length;
  const y = new Float32Array(models * items);
  data.responses.forEach((row, m) => {
    for (let i = 0; i < items; i++) y[m * items + i] = row.charCodeAt(i) === 49 ? 1 : 0;
  });
  return { y, models, items };
}

export const tinyOps = {
  'tiny.holdout': ({ data, options }, progress) => {
    const { y, models, items } = matrix(data);
    return tinyHoldout(y, models, items, { dropConstantItems: true, ...options },
      (done, total, stage) => progress({ done, total, stage }));
  },
  'tiny.fit': ({ data, options }, progress) => {
    const { y, models, items } = matrix(data);
    return fitTinyBenchmark(y, models, items, { dropConstantItems: true, ...options },
      (done, total, stage) => progress({ done, total, stage }));
  },
  'tiny.estimate': ({ benchmark, answers }) => estimateTiny(benchmark, Float32Array.from(answers)),
};
