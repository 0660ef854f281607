/**
 * `asyncfn samples`: the sample functions (echo, sleep, chaos, figlet) that `asyncfn up` runs, on
 * their own server, for a stack whose gateway and worker run apart (deploy/compose.yaml's
 * `functions` service runs it from the image, which holds only the bundle). Reads no config and
 * connects to nothing; stops on SIGTERM or SIGINT.
 */
import { startSampleFunctions } from '../samples/index.js';

/** The port `asyncfn samples` listens on unless `--port` says otherwise, as an OpenFaaS function's. */
export const SAMPLES_DEFAULT_PORT = 8080;

/** Serves the sample functions on `host`:`port` until a signal; resolves with the exit code. */
export async function runSamples(host: string, port: number, out: (line: string) => void): Promise<number> {
  const samples = await startSampleFunctions({ host, port });
  out(`sample functions at ${samples.url}: ${Object.keys(samples.functions).join(', ')}`);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await samples.close();
  return 0;
}
