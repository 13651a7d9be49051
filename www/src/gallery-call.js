// Page side of the worker operations that need the gallery's embeddings (transport,
// alignment, model collapse): the shared URLs, a progress bar and status line while the
// encoders load and the photos are embedded, the button disabled meanwhile.

/** Where the bundled models, the gallery and the sentence corpus are, next to the page. */
export function galleryUrls() {
  const at = (path) => new URL(path, window.location.href).href;
  return { baseUrl: at('./models/'), galleryUrl: at('./gallery/'), sentencesUrl: at('./sentences.json') };
}

/**
 * Runs `op` with the gallery URLs added to `args`. Resolves with the result, or with null
 * after passing the error to `onError` (the page stays usable).
 */
export async function callWithGallery(client, op, args, { button, progress, status, onError }) {
  button.disabled = true;
  progress.hidden = false;
  try {
    return await client.call(op, { ...galleryUrls(), ...args }, {
      onProgress: (p) => {
        if (p.stage === 'download' && p.total) progress.value = p.loaded / p.total;
        if (p.stage === 'images') progress.value = p.done / p.total;
        status.textContent = p.stage === 'images' ? `Embedding photos ${p.done}/${p.total}…` : 'Loading the encoders…';
      },
    });
  } catch (err) {
    onError(err);
    status.textContent = '';
    return null;
  } finally {
    progress.hidden = true;
    button.disabled = false;
  }
}
