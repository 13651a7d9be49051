// Image decoding for the search page and its worker: a Blob (file, fetch response) →
// straight RGBA pixels {width, height, data}, the input latentlab's image encoders take.
// Uses only createImageBitmap and OffscreenCanvas, so it runs in pages and workers alike.
// (Not the package's decodeBlob: the search page imports this on its own thread, and sharing the
// package's module there made the bundler put it in the search page's chunk, which every
// other page's lazily loaded package chunk then imported.)

/** Images are scaled down to this many pixels on their long side before embedding. */
export const MAX_SIDE = 1024;

/**
 * Decodes `blob`, scaled down (never up) so its long side is at most `maxSide`.
 * Colour profiles are ignored, as the CLI's decoder does, so both give the same pixels.
 * Throws an Error naming `label` when the browser cannot decode the file.
 */
export async function decodeImage(blob, { maxSide = MAX_SIDE, label = 'image' } = {}) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${label}: not an image this browser can decode`);
  }
  try {
    const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    const { data } = ctx.getImageData(0, 0, width, height);
    return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } finally {
    bitmap.close();
  }
}
