// The one way the pages and the worker fetch the site's own data files (JSON, pictures, .npy,
// the models' manifest): each file is used only once its sha256 equals the one computed when
// the site was built (www/integrity-plugin.js), so a file damaged or swapped on the host, in
// a cache or on the way is refused with its name instead of feeding the page wrong data.
// Model files are checked against the manifest's sha256 by the package's fetchChecked, with
// resuming and the Cache API; the manifest itself comes through here, so that chain starts
// in the bundle too. URLs a user types (a CLIP model) cannot be known at build time.

// Every chunk, the worker's included, is built into assets/ (in development: src/), one level
// below the site's root, wherever the site is served from. (Through a variable, or vite would
// look for a file named '../' to bundle.)
const HERE = import.meta.url;
const SITE_ROOT = new URL('../', HERE);

// Its own chunk, loaded on the first fetch: pages that fetch no data never download it.
let table = null;
const integrity = () => (table ??= import('virtual:latentlab-integrity').then((m) => m.default));

/** `url`'s path under the site's root, as the table names it, or null for any other URL. */
function siteFile(url) {
  const { origin, pathname } = new URL(url, self.location.href);
  if (origin !== SITE_ROOT.origin || !pathname.startsWith(SITE_ROOT.pathname)) return null;
  return decodeURIComponent(pathname.slice(SITE_ROOT.pathname.length));
}

/** Hex sha256 of `bytes`. */
export async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  // Pages served over plain http (not localhost) have no crypto.subtle: hash in wasm.
  const { default: init, sha256Hex } = await import('latentlab');
  await init();
  return sha256Hex(bytes);
}

/**
 * Fetches one of the site's own files and answers a Response over its checked bytes (so
 * `.json()`, `.blob()`, `.arrayBuffer()` work as usual). An HTTP error is answered as it
 * came, for the caller to say what is missing; a file whose sha256 differs from the build's,
 * or that the build did not have, throws an Error that names it.
 */
export async function fetchVerified(url) {
  const file = siteFile(url);
  if (file === null) throw new Error(`${url} is not a file of this site, so it cannot be checked`);
  const response = await fetch(url);
  if (!response.ok) return response;
  const bytes = new Uint8Array(await response.arrayBuffer());
  const expected = (await integrity())[file];
  if (!expected) {
    throw new Error(`${file} was not part of this site when it was built, so it cannot be checked and is not used`);
  }
  const actual = await sha256(bytes);
  if (actual !== expected) {
    throw new Error(`${file} is damaged or was altered after the site was built (sha256 ${actual.slice(0, 16)}…, `
      + `expected ${expected.slice(0, 16)}…), so it is not used`);
  }
  return new Response(bytes, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** url → Promise of a blob: URL; pictures are shown again and again, so each is checked once. */
const pictures = new Map();

/** A blob: URL of the checked picture at `url`, for an `<img>` (img-src allows blob:). */
export function verifiedPicture(url) {
  const key = new URL(url, self.location.href).href;
  if (!pictures.has(key)) {
    const made = fetchVerified(key).then(async (response) => {
      if (!response.ok) throw new Error(`${siteFile(key)}: HTTP ${response.status} ${response.statusText}`);
      return URL.createObjectURL(await response.blob());
    });
    made.catch(() => pictures.delete(key)); // a later render may try again
    pictures.set(key, made);
  }
  return pictures.get(key);
}
