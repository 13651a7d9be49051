// The gallery's photos and captions (and the sentence corpus) embedded by the bundled pair,
// once per worker, for the pages that compare or resample them (alignment, model collapse).
import { Encoder, parseManifest } from 'latentlab/encoders';
import { decodeImage } from './images.js';
import { fetchVerified } from './fetch-data.js';

const PAIR_IMAGE_MODEL = 'effl0-minilm-bridge';

let cache = null;

/**
 * {titles, files, photo, features, caption, sentences, sentenceText}: EmbeddingMatrix values
 * ({rows, cols, data}) for the photos' bridge embeddings (384-d), their EfficientNet features
 * (1280-d), the captions, and the sentences followed by the captions.
 */
export async function galleryEmbeddings({ baseUrl, galleryUrl, sentencesUrl }, progress) {
  if (cache) return cache;
  const manifestUrl = new URL('manifest.json', baseUrl).href;
  const response = await fetchVerified(manifestUrl);
  if (!response.ok) throw new Error(`${manifestUrl}: HTTP ${response.status}`);
  const manifest = parseManifest(await response.text());
  progress({ stage: 'models' });
  const encoder = await Encoder.loadPair(manifest, PAIR_IMAGE_MODEL, {
    baseUrl,
    onProgress: (p) => progress({ stage: 'download', loaded: p.loaded, total: p.total }),
  });
  try {
    const listResponse = await fetchVerified(new URL('gallery.json', galleryUrl).href);
    if (!listResponse.ok) throw new Error(`gallery.json: HTTP ${listResponse.status}`);
    const items = await listResponse.json();
    const images = [];
    for (const [at, item] of items.entries()) {
      const photo = await fetchVerified(new URL(item.file, galleryUrl).href);
      if (!photo.ok) throw new Error(`${item.file}: HTTP ${photo.status}`);
      const blob = await photo.blob();
      images.push(await decodeImage(blob, { label: item.file }));
      progress({ stage: 'images', done: at + 1, total: items.length });
    }
    const [photo, features] = encoder.image.embedOutputs(images, ['image_embeds', 'features']);
    const caption = encoder.embedText(items.map((i) => i.title));
    const sentencesResponse = await fetchVerified(sentencesUrl);
    if (!sentencesResponse.ok) throw new Error(`sentences.json: HTTP ${sentencesResponse.status}`);
    const { sentences } = await sentencesResponse.json();
    const sentenceText = [...sentences, ...items.map((i) => i.title)];
    cache = {
      titles: items.map((i) => i.title),
      files: items.map((i) => i.file),
      photo,
      features,
      caption,
      sentences: encoder.embedText(sentenceText),
      sentenceText,
    };
    return cache;
  } finally {
    encoder.free();
  }
}
