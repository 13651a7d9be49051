// Which of each module's two wasm builds this engine runs: `*_relaxed_bg.wasm` (SIMD + relaxed
// SIMD: fused multiply-add in tract's matrix kernels, faster encoders in Chromium) where the
// engine validates relaxed SIMD, else `*_bg.wasm` (SIMD only: Firefox, Safari, Node 20). Both
// builds of a module come from the same Rust source and share one JS glue; the core module
// (`latentlab`) and the models module (`latentlab/encoders`) make the same choice.

// The smallest module that uses relaxed SIMD: one function returning
// f32x4.relaxed_madd(v128.const 0, v128.const 0, v128.const 0).
const zeros = () => [0xfd, 0x0c, ...new Array(16).fill(0)];
const body = [0x00, ...zeros(), ...zeros(), ...zeros(), 0xfd, 0x85, 0x02, 0x0b];
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, body.length + 2, 0x01, body.length, ...body, // code section
]);

let supported = null;

/** Whether this engine runs relaxed SIMD (checked once, by validating a tiny module). */
export function relaxedSimdSupported() {
  if (supported === null) {
    try {
      supported = WebAssembly.validate(RELAXED_SIMD_PROBE);
    } catch {
      supported = false;
    }
  }
  return supported;
}

let variant = null;

/** `'relaxed-simd'` or `'simd128'` once the module is initialised (`null` before). */
export function wasmVariant() {
  return variant;
}

/** @internal the package's loaders record what they instantiated. */
export function recordWasmVariant(name) {
  variant ??= name;
}

/**
 * @internal Each entry's default export: `init()` picks the build; `init({ relaxedSimd: false })`
 * forces the SIMD-only one; `init({ module_or_path })` instantiates what it is given, as
 * wasm-bindgen's own init does. Later calls return the first instance. `urlOf(relaxed)` must
 * hold the entry's two literal `new URL(…, import.meta.url)`, so that bundlers emit both files.
 */
export async function initWith(initModule, options, urlOf) {
  const plain = options !== null && Object.getPrototypeOf(options) === Object.prototype;
  if (!plain || options.module_or_path !== undefined) return initModule(options);
  const relaxed = options.relaxedSimd ?? relaxedSimdSupported();
  const exports = await initModule({ module_or_path: urlOf(relaxed) });
  recordWasmVariant(relaxed ? 'relaxed-simd' : 'simd128');
  return exports;
}
