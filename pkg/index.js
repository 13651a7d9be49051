// Browser and bundler entry: the wasm-bindgen module (call the default export once to
// initialise it) plus the encoder loader.
export * from './latentlab.js';
export { default } from './latentlab.js';
export * from './encoder.js';
