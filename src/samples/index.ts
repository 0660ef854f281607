/** Public API of src/samples: sample functions for local runs (`asyncfn up`), the README and tests. */
export { startSampleFunctions, type SampleFunctions, type SampleFunctionsOptions } from './server.js';
export { durationParam, formatDuration, MAX_SAMPLE_DURATION_MS } from './duration.js';
export type { SampleFunction, SampleRequest, SampleResponse } from './sample-function.js';
