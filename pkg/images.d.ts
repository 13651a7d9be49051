import type { ImageInput } from './latentlab_models.js';

/** Every kind of picture `toImageInput`, `Encoder.embedImages` and `WorkerPool.embedImage` take. */
export type AnyImage =
  | ImageInput
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | SVGImageElement
  | HTMLVideoElement
  | VideoFrame
  | Blob
  | URL
  /** A URL, or under Node a file path. */
  | string
  /** An encoded PNG or JPEG file's bytes (a Node Buffer is a Uint8Array). */
  | ArrayBuffer
  | ArrayBufferView;

export interface ToImageOptions {
  /** Scale larger pictures down so their long side is at most this (default: no scaling). */
  maxSide?: number;
  /** Names the picture in error messages (default "image"). */
  label?: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** Whether `x` is already RGBA pixels `{width, height, data}` (as ImageData is). */
export function isRgbaImage(x: unknown): x is ImageInput;
/**
 * `input` as straight RGBA pixels, decoded by the browser's own decoder where it is encoded
 * (Blob, File, URL); colour profiles ignored, as the CLI ignores them.
 */
export function toImageInput(input: AnyImage, options?: ToImageOptions): Promise<ImageInput>;
/** Decodes a Blob or File with `createImageBitmap`. */
export function decodeBlob(blob: Blob, options?: { maxSide?: number; label?: string }): Promise<ImageInput>;
