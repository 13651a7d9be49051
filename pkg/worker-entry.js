// The package's own worker script: one wasm instance serving the encoder operations.
// `LatentlabWorker` and `WorkerPool` (latentlab/worker) start it unless given another.
import { serveWorker, encoderOps } from './worker-host.js';

serveWorker(encoderOps);
