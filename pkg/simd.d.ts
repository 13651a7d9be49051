/** Whether this engine runs relaxed SIMD (checked once, by validating a tiny module). */
export function relaxedSimdSupported(): boolean;
/** Which wasm build was instantiated: `'relaxed-simd'` or `'simd128'`; `null` before init. */
export function wasmVariant(): 'relaxed-simd' | 'simd128' | null;
