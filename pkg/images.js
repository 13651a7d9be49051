// Every kind of picture a page has, turned into the straight RGBA pixels the image encoders
// take ({width, height, data}). Decoding is the browser's own (createImageBitmap), in pages
// and workers alike; colour profiles are ignored, as the CLI's decoder ignores them. Under Node,
// which has no decoder, PNG and JPEG files (paths, Buffers, bytes) go through the CLI's own
// decoder compiled into the models wasm module (registered by encoders-node.js).
import { imageDecoder, localFileReader } from './platform.js';

const isRgba = (x) => x !== null && typeof x === 'object'
  && Number.isInteger(x.width) && Number.isInteger(x.height)
  && (x.data instanceof Uint8Array || x.data instanceof Uint8ClampedArray);

/** Whether `x` is already an RGBA image ({width, height, data}, as ImageData). */
export function isRgbaImage(x) {
  return isRgba(x);
}

const has = (name) => typeof globalThis[name] === 'function';
const isBlob = (x) => has('Blob') && x instanceof globalThis.Blob;
/** Things `drawImage` takes that a worker message cannot carry (elements) or that can be drawn at once. */
const isDrawable = (x) => ['ImageBitmap', 'HTMLImageElement', 'HTMLCanvasElement', 'OffscreenCanvas',
  'SVGImageElement', 'HTMLVideoElement', 'VideoFrame'].some((name) => has(name) && x instanceof globalThis[name]);

function describe(x) {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return x.constructor?.name ?? 'an object';
}

/** A 2-D canvas of `width` × `height` in pages and workers. */
function canvas(width, height) {
  if (has('OffscreenCanvas')) return new OffscreenCanvas(width, height);
  const c = globalThis.document.createElement('canvas');
  c.width = width;
  c.height = height;
  return c;
}

/** The pixels of something `drawImage` takes, scaled down (never up) to `maxSide`. */
function pixelsOf(source, width, height, maxSide, label) {
  if (!(width > 0 && height > 0)) throw new Error(`${label}: the picture has no pixels (${width} × ${height}); is it loaded?`);
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const ctx = canvas(w, h).getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, w, h);
  const { data } = ctx.getImageData(0, 0, w, h);
  return { width: w, height: h, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

const isBlobSupported = () => has('Blob') && has('createImageBitmap');

/** `image` scaled down to `maxSide` where that needs a canvas (none under Node: refused by name). */
function scaledDown(image, maxSide, label) {
  if (Math.max(image.width, image.height) <= maxSide) return image;
  if (!has('OffscreenCanvas') && !globalThis.document) throw new Error(`${label}: scaling a picture down (maxSide) needs a canvas; leave maxSide unset here`);
  const ctx = canvas(image.width, image.height).getContext('2d');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.byteLength), image.width, image.height), 0, 0);
  return pixelsOf(ctx.canvas, image.width, image.height, maxSide, label);
}

/** Decodes a Blob (a File, a fetched body) with the browser's decoder. */
export async function decodeBlob(blob, { maxSide = Infinity, label = 'image' } = {}) {
  if (!has('createImageBitmap')) throw new Error(`${label}: decoding a Blob needs createImageBitmap (a browser or a browser worker)`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', imageOrientation: 'from-image' });
  } catch {
    const kind = blob.type ? ` (${blob.type})` : '';
    throw new Error(`${label}: ${blob.size} bytes${kind} that this browser cannot decode as an image`);
  }
  try {
    return pixelsOf(bitmap, bitmap.width, bitmap.height, maxSide, label);
  } finally {
    bitmap.close();
  }
}

/**
 * `input` as RGBA pixels. Takes RGBA objects and ImageData as they are; ImageBitmap, <img>,
 * <canvas>, OffscreenCanvas, <video> and VideoFrame drawn; Blob and File decoded; a URL
 * (string or URL) fetched, then decoded; an encoded file's bytes decoded; under Node, a file path
 * read and decoded. `maxSide` scales larger pictures down first (default:
 * none; the encoders resize to their own input size anyway). Errors name `label`.
 */
export async function toImageInput(input, { maxSide = Infinity, label = 'image', fetch: doFetch = globalThis.fetch, signal } = {}) {
  if (isRgba(input)) return input;
  if (isBlob(input)) return decodeBlob(input, { maxSide, label });
  if (has('HTMLImageElement') && input instanceof globalThis.HTMLImageElement) {
    try {
      await input.decode();
    } catch {
      throw new Error(`${label}: the <img> (${input.currentSrc || input.src || 'no src'}) could not be loaded or decoded`);
    }
    return pixelsOf(input, input.naturalWidth, input.naturalHeight, maxSide, label);
  }
  if (isDrawable(input)) {
    const width = input.videoWidth ?? input.displayWidth ?? input.width;
    const height = input.videoHeight ?? input.displayHeight ?? input.height;
    return pixelsOf(input, width, height, maxSide, label);
  }
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) {
    // An encoded file's bytes (a Node Buffer is a Uint8Array).
    const bytes = input instanceof ArrayBuffer ? new Uint8Array(input)
      : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const decode = imageDecoder();
    if (decode) return scaledDown(decode(bytes, label), maxSide, label);
    if (isBlobSupported()) return decodeBlob(new Blob([bytes]), { maxSide, label });
    throw new Error(`${label}: no image decoder here for file bytes; pass RGBA pixels (under Node, import 'latentlab/encoders', which registers its PNG/JPEG decoder)`);
  }
  const fileUrl = localFileReader() && (input instanceof URL || typeof input === 'string') && /^file:/i.test(String(input));
  if (fileUrl || (typeof input === 'string' && localFileReader() && !/^(https?|data|blob):/i.test(input))) {
    // Under Node: a file path, or a file: URL.
    const path = fileUrl ? decodeURIComponent(new URL(String(input)).pathname) : input;
    let bytes;
    try {
      bytes = await localFileReader()(path);
    } catch (err) {
      throw new Error(`${label}: cannot read ${path} (${err.code ?? err.message})`);
    }
    return scaledDown(imageDecoder()(bytes, `${label} (${path})`), maxSide, label);
  }
  if (typeof input === 'string' || input instanceof URL) {
    if (!doFetch) throw new Error(`${label}: fetching ${input} needs fetch`);
    let response;
    try {
      response = await doFetch(String(input), { signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new Error(`${label}: ${input} could not be fetched (${err.message})`);
    }
    if (!response.ok) throw new Error(`${label}: ${input} could not be fetched (HTTP ${response.status})`);
    return decodeBlob(await response.blob(), { maxSide, label: `${label} (${input})` });
  }
  throw new TypeError(`${label}: expected RGBA pixels {width, height, data}, ImageData, ImageBitmap, an <img> or <canvas>, a Blob or File, a URL, or (Node) a file path or the file's bytes; got ${describe(input)}`);
}
