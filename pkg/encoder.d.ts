import type { AnyImage } from './images.js';
import type { EmbeddingMatrix, ImageInput, ModelEntry, Manifest, TextEmbedder, ImageEmbedder } from './latentlab_models.js';
export { parseManifest } from './latentlab_models.js';

export interface LoadProgress { url: string; loaded: number; total: number; cached: boolean; }
export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Resolves relative `file`/`tokenizer` paths of manifest entries. */
  baseUrl?: string;
  /** Keep downloads in the Cache API (default true). */
  cache?: boolean;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}
export type EncoderSource =
  | ModelEntry
  | { text?: ModelEntry; image?: ModelEntry }
  | { textUrl?: string; tokenizerUrl?: string; visionUrl?: string; dim?: number };

/**
 * Downloads `url` (or reads it from the Cache API) and checks its sha256. A download that
 * breaks off is resumed with `Range: bytes=<received>-` (read again from the start where the
 * server answers 200), up to three times.
 */
export function fetchChecked(url: string, options?: LoadOptions & { sha256?: string }): Promise<Uint8Array>;

/** The manifest entries a source names. */
export function resolveEncoderSource(source: EncoderSource): { text: ModelEntry | null; image: ModelEntry | null };
/** The checked bytes of an encoder's files, as `WorkerPool` sends them to its workers. */
export interface EncoderFiles {
  entries: { text: ModelEntry | null; image: ModelEntry | null };
  files: { textModel: Uint8Array | null; tokenizer: Uint8Array | null; imageModel: Uint8Array | null };
}
/** Downloads (or reads from the Cache API) and checks the files of the encoders `source` names. */
export function fetchEncoderFiles(source: EncoderSource, options?: LoadOptions): Promise<EncoderFiles>;

export interface PretrainedOptions extends LoadOptions {
  /** 'fp32' (default) reads onnx/model.onnx; 'q8' reads onnx/model_quantized.onnx. */
  dtype?: 'fp32' | 'q8';
  /** A text model's pooling of last_hidden_state (default 'mean', as sentence-transformers). */
  pooling?: 'mean' | 'cls' | 'none';
  /** Tokens per text (default: config.json's max_position_embeddings, at most 512). */
  maxTokens?: number;
  /** An image model's embedding output (default 'image_embeds' for CLIP, else 'pooler_output'). */
  imageOutput?: string;
}

export class Encoder {
  readonly text: TextEmbedder | null;
  readonly image: ImageEmbedder | null;
  static load(source: EncoderSource, options?: LoadOptions): Promise<Encoder>;
  /** The encoder of files already fetched (how a worker builds it from bytes its page downloaded). */
  static fromFiles(files: EncoderFiles): Encoder;
  /**
   * A model folder as Hugging Face and transformers.js publish it (config.json, tokenizer.json,
   * onnx/model.onnx or onnx/model_quantized.onnx, preprocessor_config.json; CLIP as
   * onnx/text_model.onnx + onnx/vision_model.onnx): a URL, or under Node a local path.
   */
  static fromPretrained(folder: string | URL, options?: PretrainedOptions): Promise<Encoder>;
  static loadPair(manifest: Manifest, imageModelName: string, options?: LoadOptions): Promise<Encoder>;
  readonly dim: number;
  embedText(texts: string[]): EmbeddingMatrix;
  embedImage(images: ImageInput[]): EmbeddingMatrix;
  /** Any pictures, decoded by the browser (see `toImageInput`), then embedded. */
  embedImages(images: AnyImage[], options?: { maxSide?: number; signal?: AbortSignal }): Promise<EmbeddingMatrix>;
  free(): void;
}
