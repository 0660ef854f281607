import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetterFilter } from '../dead-letters/filters.js';
import { countDeadLetters, purgeDeadLetters } from '../dead-letters/purge.js';
import { getDeadLetter, readBounds } from '../dead-letters/read.js';
import { boundsOrNone } from '../dead-letters/replay-many.js';
import { deadLetterDetail, listDeadLetterPage, type DeadLetterDetail, type DeadLetterPage } from '../dead-letters/view.js';

/** What `DELETE /system/dead-letters` answers. */
export interface PurgeResult {
  readonly matched: number;
  readonly purged: number;
  readonly dryRun: boolean;
}

/** The dead-letter stream behind `/system/dead-letters` (the console's dead-letter page). */
export interface DeadLetterBrowser {
  list(filter: DeadLetterFilter, page: { afterSeq?: number | undefined; limit: number }): Promise<DeadLetterPage>;
  /** One dead letter in full, or undefined when there is none with that sequence. */
  get(seq: number): Promise<DeadLetterDetail | undefined>;
  purge(filter: DeadLetterFilter, opts: { dryRun: boolean }): Promise<PurgeResult>;
}

/** The same reads and purge as `asyncfn dlq list | show | purge` (src/dead-letters/). */
export function deadLetterBrowser(deps: { readonly js: JetStreamClient; readonly jsm: JetStreamManager }): DeadLetterBrowser {
  return {
    list: (filter, page) => listDeadLetterPage(deps, filter, page),
    async get(seq) {
      // No stream yet: nothing was ever dead-lettered (getMessage would fail with "stream not found").
      const found = (await readBounds(deps.jsm)) ? await getDeadLetter(deps.jsm, seq) : undefined;
      return found ? deadLetterDetail(found) : undefined;
    },
    async purge(filter, { dryRun }) {
      const bounds = await boundsOrNone(deps.jsm);
      if (dryRun) return { matched: await countDeadLetters(deps, filter, bounds), purged: 0, dryRun };
      const outcome = await purgeDeadLetters(deps, filter, bounds);
      return { matched: outcome.matched, purged: outcome.purged, dryRun };
    },
  };
}
