// Node entry point of the models module (`latentlab/encoders`): instantiated synchronously, as
// the core's node.js does, with the same choice of build. It also registers what Node lacks: a
// reader of local files (so `Encoder.fromPretrained('/path/to/folder')` works) and the CLI's
// PNG/JPEG decoder (so `toImageInput` takes paths, Buffers and bytes).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setLocalFileReader, setImageDecoder } from './platform.js';
import { initSync, decodeImage } from './latentlab_models.js';
import { relaxedSimdSupported, recordWasmVariant } from './simd.js';

const relaxed = process.env.LATENTLAB_RELAXED_SIMD !== '0' && relaxedSimdSupported();
const file = relaxed ? './latentlab_models_relaxed_bg.wasm' : './latentlab_models_bg.wasm';
initSync({ module: readFileSync(new URL(file, import.meta.url)) });
recordWasmVariant(relaxed ? 'relaxed-simd' : 'simd128');
setLocalFileReader(async (path) => new Uint8Array(await readFile(path)));
setImageDecoder(decodeImage);

export * from './encoders.js';
export { default } from './encoders.js';
