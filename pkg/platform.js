// What differs between hosts, set by the host's entry file: under Node, encoders-node.js registers a
// reader of local files, so `Encoder.fromPretrained('/path/to/folder')` works there, while the
// browser build never names `node:fs` (bundlers would try to resolve it); and it registers the
// wasm PNG/JPEG decoder, since Node has no image decoder of its own.
let localReader = null;

/** @internal encoders-node.js registers `(path) => Promise<Uint8Array>`. */
export function setLocalFileReader(read) {
  localReader = read;
}

/** The registered local-file reader, or null (browsers). */
export function localFileReader() {
  return localReader;
}

let decoder = null;

/** @internal encoders-node.js registers `(bytes, label) => {width, height, data}` (the CLI's decoder, in wasm). */
export function setImageDecoder(decode) {
  decoder = decode;
}

/** The registered image-file decoder, or null (browsers decode with createImageBitmap). */
export function imageDecoder() {
  return decoder;
}
