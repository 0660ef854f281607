// @ts-check
/*
 * asyncfn's stand-in for @tapjs/processinfo (package.json, "overrides").
 *
 * tap 21 starts every test file, and every node process a test starts, with @tapjs/processinfo's
 * `--import`: it records each module the process loads, so that coverage can be mapped and
 * `tap --changed` can tell which tests a change touches. On Node 20 it does so through a module
 * loader thread that every module load waits on, plus its own start-up: ~0.7 s of CPU per process
 * (a unit test file: 0.8 s plain, 1.7 s with it). asyncfn's suite measures no coverage
 * (package.json: "disable-coverage"), so it paid that for nothing: on the 2-core box, `tap` took
 * 540-580 s with the recorder and 389 s without it.
 *
 * What tap needs from the package is kept: `ProcessInfo.spawn` starts a test file (as
 * child_process.spawn, the option naming the test dropped) and `@tapjs/processinfo/import`, which
 * tap passes to every test process, loads nothing. What needs the recordings refuses, saying why:
 * `tap --changed` and `tap repl`.
 */
import { spawn as spawnChild } from 'node:child_process';

const unsupported = (what) => new Error(`${what} needs @tapjs/processinfo's recordings; asyncfn replaces it with test/tap-processinfo (see its index.js)`);

export class ProcessInfo {
  /**
   * Starts a test file as tap asks: child_process.spawn, without the recorder's own option.
   * @param {string} command
   * @param {readonly string[]} args
   * @param {import('node:child_process').SpawnOptions & { externalID?: string }} [options]
   */
  static spawn(command, args, options = {}) {
    const { externalID: _externalID, ...spawnOptions } = options;
    return spawnChild(command, args, spawnOptions);
  }

  static async load() {
    throw unsupported('tap repl');
  }

  static loadSync() {
    throw unsupported('tap repl');
  }

  async load() {
    throw unsupported('tap --changed');
  }
}
