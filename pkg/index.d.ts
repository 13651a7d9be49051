export * from './latentlab.js';
export { default } from './latentlab.js';
export * from './encoder.js';
