// The index benchmarks' gallery: n seeded rows around 100 random centres (labelled random:
// timing, not retrieval quality). Self-contained, so a browser benchmark can hand its source
// to the page.
export function clusteredGallery(n, dim) {
  let seed = 12345;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
  const centres = Array.from({ length: 100 }, () => Float32Array.from({ length: dim }, random));
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = centres[i % 100];
    for (let j = 0; j < dim; j++) vectors[i * dim + j] = c[j] + 0.5 * random();
  }
  return vectors;
}
