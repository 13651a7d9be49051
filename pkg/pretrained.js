// Model folders as Hugging Face and transformers.js publish them: `config.json`,
// `tokenizer.json`, `onnx/model.onnx` (and `onnx/model_quantized.onnx`), `preprocessor_config.json`
// for images; CLIP pairs as `onnx/text_model.onnx` + `onnx/vision_model.onnx`. The folder is read
// over HTTP(S) (download with progress, Cache API) or, under Node, from a local path; from what it
// holds this builds the manifest entries latentlab's encoders take, so no entry is written by hand.
import { fetchChecked } from './encoder.js';
import { localFileReader } from './platform.js';

const DTYPES = { fp32: '', q8: '_quantized' };

/** HF's `resample` codes (PIL): 0 nearest, 2 bilinear, 3 bicubic. */
const FILTERS = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };

const isUrl = (s) => /^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[a-z]:[\\/]/i.test(s);

/** A reader of `folder`'s files: `(name, kind) => Promise<Uint8Array | null>` (null: the file is not there). */
function folderReader(folder, options) {
  const base = String(folder).replace(/\/?$/, '/');
  const local = !isUrl(base) && !globalThis.location;
  if (local) {
    const read = localFileReader();
    if (!read) throw new Error(`${folder}: a local folder can be read under Node only; in a browser, give its URL`);
    return async (name) => {
      try {
        return await read(base + name);
      } catch (err) {
        if (err?.code === 'ENOENT') return null;
        throw new Error(`${base}${name}: ${err.message}`);
      }
    };
  }
  return async (name) => {
    const url = new URL(name, new URL(base, globalThis.location?.href)).href;
    try {
      return await fetchChecked(url, options);
    } catch (err) {
      if (/was not found/.test(err.message)) return null;
      throw err;
    }
  };
}

function parseJson(bytes, what) {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new Error(`${what} is not JSON (${err.message})`);
  }
}

function positiveInt(value, what) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${what} must be a positive whole number, not ${JSON.stringify(value)}`);
  return value;
}

/** The preprocessing entry of a `preprocessor_config.json` (CLIP's and ViT's processors). */
export function preprocessingFrom(config, where) {
  const shortest = typeof config.size === 'object' ? config.size?.shortest_edge ?? null : null;
  const square = typeof config.size === 'number' ? config.size : config.size?.height ?? null;
  const crop = config.do_center_crop === false ? null
    : typeof config.crop_size === 'number' ? config.crop_size : config.crop_size?.height ?? null;
  let size;
  let resize;
  if (shortest !== null) {
    // CLIP: shorter side to `shortest_edge`, then the centre square of `crop_size`.
    if (crop !== null && crop !== shortest) {
      throw new Error(`${where}: resizing the shorter side to ${shortest} and then cropping ${crop} is not supported (latentlab resizes the shorter side to the crop size and cuts the centre square)`);
    }
    [size, resize] = [shortest, 'center-crop'];
  } else if (square !== null) {
    // ViT and the like: both sides to the size (the aspect ratio changes), then an optional crop.
    [size, resize] = crop !== null && crop !== square ? [null, null] : [square, 'stretch'];
    if (size === null) throw new Error(`${where}: resizing to ${square} and then cropping ${crop} is not supported`);
  } else {
    throw new Error(`${where}: size is missing (expected a number, {shortest_edge} or {height, width})`);
  }
  const filter = FILTERS[config.resample ?? 2];
  if (!filter) throw new Error(`${where}: resample ${config.resample} is not supported (0 nearest, 2 bilinear, 3 bicubic)`);
  const normalize = config.do_normalize === false ? {} : { mean: config.image_mean ?? [0.5, 0.5, 0.5], std: config.image_std ?? [0.5, 0.5, 0.5] };
  if (config.do_normalize === false) normalize.scale = config.do_rescale === false ? 1 : config.rescale_factor ?? 1 / 255;
  return { size: positiveInt(size, `${where}: the image size`), resize, filter, ...normalize };
}

/**
 * Builds `{entries: {text, image}, files}` (as `fetchEncoderFiles` returns) for the model folder at
 * `folder`. Options: `dtype` ('fp32' default, or 'q8' for the `_quantized` files), `pooling` for
 * text models ('mean' default, 'cls', 'none'), `maxTokens`, `imageOutput` (an image model's
 * embedding output, default 'image_embeds' for CLIP and 'pooler_output' otherwise), and the
 * download options of `Encoder.load` (`onProgress`, `signal`, `cache`, `fetch`).
 */
export async function fetchPretrainedFiles(folder, options = {}) {
  if (typeof folder !== 'string' && !(folder instanceof URL)) throw new TypeError('fromPretrained needs the model folder as a URL or (Node) a path');
  const dtype = options.dtype ?? 'fp32';
  if (!Object.hasOwn(DTYPES, dtype)) throw new Error(`dtype must be 'fp32' or 'q8', not ${JSON.stringify(dtype)}`);
  const read = folderReader(folder, options);
  const where = String(folder).replace(/\/$/, '');
  const need = async (name) => {
    const bytes = await read(name);
    if (bytes === null) throw new Error(`${where}/${name} was not found${name.startsWith('onnx/') && dtype === 'q8' ? ` (dtype 'q8' reads the _quantized files; is there a quantised export?)` : ''}`);
    return bytes;
  };
  const [configBytes, tokenizer, preprocessorBytes] = await Promise.all([
    need('config.json'), read('tokenizer.json'), read('preprocessor_config.json'),
  ]);
  const config = parseJson(configBytes, `${where}/config.json`);
  const preprocessor = preprocessorBytes && parseJson(preprocessorBytes, `${where}/preprocessor_config.json`);
  const suffix = DTYPES[dtype];
  const name = `${where.split('/').pop() || 'model'}${dtype === 'q8' ? '-q8' : ''}`;
  const clip = config.model_type === 'clip' || (config.text_config && config.vision_config);
  const entries = { text: null, image: null };
  const files = {};

  if (clip) {
    const dim = positiveInt(config.projection_dim ?? 512, `${where}/config.json: projection_dim`);
    if (!tokenizer) throw new Error(`${where}/tokenizer.json was not found (a CLIP folder needs it for the text model)`);
    if (!preprocessor) throw new Error(`${where}/preprocessor_config.json was not found (a CLIP folder needs it for the vision model)`);
    entries.text = {
      name: `${name}-text`, kind: 'text', file: `onnx/text_model${suffix}.onnx`, tokenizer: 'tokenizer.json',
      max_tokens: options.maxTokens ?? config.text_config?.max_position_embeddings ?? 77,
      pooling: 'none', embedding_output: 'text_embeds', embedding_dim: dim,
    };
    entries.image = {
      name: `${name}-vision`, kind: 'image', file: `onnx/vision_model${suffix}.onnx`, pairs_with: entries.text.name,
      embedding_output: options.imageOutput ?? 'image_embeds', embedding_dim: dim, pooling: 'none',
      preprocessing: preprocessingFrom(preprocessor, `${where}/preprocessor_config.json`),
    };
  } else if (tokenizer) {
    entries.text = {
      name, kind: 'text', file: `onnx/model${suffix}.onnx`, tokenizer: 'tokenizer.json',
      max_tokens: options.maxTokens ?? Math.min(config.max_position_embeddings ?? 512, 512),
      pooling: options.pooling ?? 'mean', embedding_output: 'last_hidden_state',
      embedding_dim: positiveInt(config.hidden_size, `${where}/config.json: hidden_size`),
    };
  } else if (preprocessor) {
    entries.image = {
      name, kind: 'image', file: `onnx/model${suffix}.onnx`,
      embedding_output: options.imageOutput ?? 'pooler_output', pooling: 'none',
      embedding_dim: positiveInt(config.hidden_size ?? config.hidden_sizes?.at(-1), `${where}/config.json: hidden_size`),
      preprocessing: preprocessingFrom(preprocessor, `${where}/preprocessor_config.json`),
    };
  } else {
    throw new Error(`${where} has neither tokenizer.json (a text model) nor preprocessor_config.json (an image model)`);
  }
  // The entries are checked before the (large) model files are fetched.
  files.tokenizer = entries.text ? tokenizer : null;
  [files.textModel, files.imageModel] = await Promise.all([
    entries.text && need(entries.text.file), entries.image && need(entries.image.file),
  ]);
  return { entries, files };
}
