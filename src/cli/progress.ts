/** Where an operator command's progress goes. */
export interface ProgressOutput {
  /** A line on stderr. */
  readonly err: (line: string) => void;
  /** Raw writes to stderr when it is a terminal (a bar redrawn in place); absent otherwise. */
  readonly tty?: ((chunk: string) => void) | undefined;
}

/** A progress display for `total` items: `update` with the number done so far, `finish` once. */
export interface Progress {
  update(done: number): void;
  finish(): void;
}

/** Width of the bar, characters. */
const BAR_WIDTH = 30;
/** Least time between two redraws of the bar, ms: a terminal needs no more than ~10 frames a second. */
const REDRAW_MS = 100;

/**
 * A bar redrawn in place on a terminal (`cancelled [######----] 1200/2000 60%`), else plain
 * lines at every tenth of `total` and only above 100 items ({@link progressReporter}), so logs
 * and pipes get a few lines, not a frame per item.
 */
export function progressBar(label: string, total: number, output: ProgressOutput, nowMs: () => number = Date.now): Progress {
  const tty = output.tty;
  if (!tty) {
    const report = progressReporter(label, total, output.err);
    return { update: report, finish: () => undefined };
  }
  let lastDrawMs = Number.NEGATIVE_INFINITY;
  let last = -1;
  let drawn = false;
  const draw = (done: number): void => {
    last = done;
    lastDrawMs = nowMs();
    drawn = true;
    tty(`\r${formatBar(label, done, total)}`);
  };
  return {
    update(done) {
      if (done === total || nowMs() - lastDrawMs >= REDRAW_MS) draw(done);
    },
    finish() {
      if (total === 0) return;
      if (last !== total && drawn) draw(Math.max(last, 0));
      if (drawn) tty('\n');
    },
  };
}

/** One frame of the bar: label, bar, done/total and percent. */
export function formatBar(label: string, done: number, total: number): string {
  const ratio = total === 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const filled = Math.round(ratio * BAR_WIDTH);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total} ${Math.floor(ratio * 100)}%`;
}

/**
 * Reports progress on `err` at every tenth of `total`, and only when more than 100 are processed:
 * `replayed 300/3000`. Call with the number processed so far.
 */
export function progressReporter(label: string, total: number, err: (line: string) => void): (done: number) => void {
  if (total <= 100) return () => undefined;
  let reportedTenths = 0;
  return (done) => {
    const tenths = Math.floor((done * 10) / total);
    if (tenths > reportedTenths) {
      reportedTenths = tenths;
      err(`${label} ${done}/${total}`);
    }
  };
}
