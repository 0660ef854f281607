import { useState } from 'preact/hooks';
import { api, hasCriteria } from '../api';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorNote } from '../components/error-note';
import { Link } from '../components/link';
import { chunksOf, formatTime } from '../format';
import { paths } from '../routes';
import type { DeadLetterFilter, DeadLetterSummary } from '../types';
import { usePoll } from '../use-poll';
import { DeadLetterDetailPanel } from './dead-letter-detail';

const REASONS = ['retriesExhausted', 'nonRetryable', 'expired', 'poison', 'callbackFailed'] as const;
/** Dead letters one replay request carries: small enough that the progress bar moves. */
const REPLAY_CHUNK = 25;
/** Pages read to collect a filtered set for a replay (500 each): at most 20,000 dead letters per click. */
const MAX_COLLECT_PAGES = 40;

type Pending = { kind: 'replayAll'; seqs: number[] } | { kind: 'purge'; matched: number };

/** Dead letters: filter, inspect, replay one or a filtered set (with progress), purge with confirmation. */
export function DeadLettersPage() {
  const [draft, setDraft] = useState<Record<keyof DeadLetterFilter, string>>({ function: '', queue: '', reason: '', since: '', until: '' });
  const [filter, setFilter] = useState<DeadLetterFilter>({});
  const [cursors, setCursors] = useState<number[]>([]);
  const [selected, setSelected] = useState<number | undefined>(undefined);
  const [pending, setPending] = useState<Pending | undefined>(undefined);
  const [progress, setProgress] = useState<{ done: number; total: number } | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<Error | undefined>(undefined);
  const after = cursors[cursors.length - 1];
  const { data, error, refresh } = usePoll(() => api.deadLetters(filter, after), `dead-letters:${JSON.stringify(filter)}:${after ?? ''}`);

  const act = async (what: () => Promise<string>): Promise<void> => {
    try {
      setActionError(undefined);
      setMessage(await what());
    } catch (err) {
      setActionError(err as Error);
    } finally {
      refresh();
    }
  };
  const onFilter = (e: Event): void => {
    e.preventDefault();
    const next: Record<string, string> = {};
    for (const [k, v] of Object.entries(draft)) if (v.trim() !== '') next[k] = v.trim();
    setFilter(next);
    setCursors([]);
  };
  const replayOne = (d: DeadLetterSummary) =>
    act(async () => {
      const r = await api.replay([d.seq]);
      // A replayed dead letter is deleted from the stream: its detail is gone with it.
      if (selected === d.seq) setSelected(undefined);
      return r.replayed === 1 ? `Replayed dead letter ${d.seq} with call id ${d.callId ?? '?'}.` : `Dead letter ${d.seq} was not replayed (${r.skipped} skipped).`;
    });
  const askReplayAll = () =>
    act(async () => {
      const seqs: number[] = [];
      let cursor: number | undefined;
      for (let page = 0; page < MAX_COLLECT_PAGES; page++) {
        const p = await api.deadLetters(filter, cursor, 500);
        seqs.push(...p.items.map((i) => i.seq));
        if (p.next === null) break;
        cursor = p.next;
      }
      setPending({ kind: 'replayAll', seqs });
      return `${seqs.length} dead letters match.`;
    });
  const askPurge = () =>
    act(async () => {
      const r = await api.purge(filter, { dryRun: true });
      setPending({ kind: 'purge', matched: r.matched });
      return `${r.matched} dead letters match.`;
    });
  const confirm = (): void => {
    const p = pending;
    setPending(undefined);
    if (p?.kind === 'replayAll') {
      void act(async () => {
        let replayed = 0;
        let skipped = 0;
        setSelected(undefined);
        setProgress({ done: 0, total: p.seqs.length });
        for (const chunk of chunksOf(p.seqs, REPLAY_CHUNK)) {
          const r = await api.replay(chunk);
          replayed += r.replayed;
          skipped += r.skipped;
          setProgress({ done: replayed + skipped, total: p.seqs.length });
        }
        return `Replayed ${replayed} dead letters${skipped > 0 ? `, skipped ${skipped}` : ''}.`;
      });
    } else if (p?.kind === 'purge') {
      void act(async () => {
        const r = await api.purge(filter, { dryRun: false });
        setSelected(undefined);
        setCursors([]);
        return `Purged ${r.purged} dead letters.`;
      });
    }
  };

  const field = (name: keyof DeadLetterFilter, label: string, hint?: string) => (
    <label>
      {label}
      <input name={name} value={draft[name]} placeholder={hint} spellcheck={false} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} />
    </label>
  );
  const done = progress !== undefined && progress.done >= progress.total;
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Dead letters</h1>
      <form class="filters" onSubmit={onFilter} role="search">
        {field('function', 'Function', 'name or name.namespace')}
        {field('queue', 'Queue')}
        <label>
          Reason
          <select name="reason" value={draft.reason} onChange={(e) => setDraft({ ...draft, reason: e.currentTarget.value })}>
            <option value="">any</option>
            {REASONS.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        {field('since', 'Since', '2h or an ISO time')}
        {field('until', 'Until', '30m or an ISO time')}
        <button type="submit">Filter</button>
      </form>
      <div class="toolbar">
        <button type="button" onClick={() => void askReplayAll()} disabled={progress !== undefined && !done}>
          Replay {hasCriteria(filter) ? 'filtered' : 'all'}…
        </button>
        <button type="button" class="danger" onClick={() => void askPurge()}>
          Purge {hasCriteria(filter) ? 'filtered' : 'all'}…
        </button>
        {progress && (
          <label class="progress">
            Replay progress{' '}
            <progress max={Math.max(progress.total, 1)} value={progress.done}>
              {progress.done} of {progress.total}
            </progress>{' '}
            {progress.done}/{progress.total}
          </label>
        )}
      </div>
      <p role="status" class="status">
        {message}
      </p>
      <ErrorNote error={error ?? actionError} />
      <div class={selected === undefined ? 'split' : 'split with-panel'}>
        {data && (
          <div class="table-wrap">
            <table class="dead-letters">
              <caption>{data.items.length === 0 ? 'No dead letters' : 'Oldest first'}</caption>
              <thead>
                <tr>
                  <th scope="col" class="num">
                    Seq
                  </th>
                  <th scope="col">Call id</th>
                  <th scope="col">Function</th>
                  <th scope="col">Queue</th>
                  <th scope="col">Reason</th>
                  <th scope="col" class="num">
                    Last status
                  </th>
                  <th scope="col" class="num">
                    Attempts
                  </th>
                  <th scope="col">Dead-lettered</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((d) => (
                  <tr key={d.seq} data-seq={d.seq} data-call-id={d.callId ?? ''} aria-selected={selected === d.seq}>
                    <th scope="row" class="num">
                      {d.seq}
                    </th>
                    <td>{d.callId ? <Link href={paths.invocation(d.callId)}>{d.callId}</Link> : '–'}</td>
                    <td>{d.function ? `${d.function}.${d.namespace ?? ''}` : '–'}</td>
                    <td>{d.queue}</td>
                    <td data-col="reason">{d.reason}</td>
                    <td class="num">{d.lastStatus ?? '–'}</td>
                    <td class="num">{d.attempts}</td>
                    <td>{formatTime(d.atMs)}</td>
                    <td>
                      <span class="row-actions">
                        <button type="button" onClick={() => setSelected(d.seq)} aria-label={`Details of dead letter ${d.seq}`}>
                          Details
                        </button>
                        <button type="button" onClick={() => void replayOne(d)} aria-label={`Replay dead letter ${d.seq}`}>
                          Replay
                        </button>
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div class="pager">
              <button type="button" onClick={() => setCursors(cursors.slice(0, -1))} disabled={cursors.length === 0}>
                Previous page
              </button>
              <button type="button" onClick={() => data.next !== null && setCursors([...cursors, data.next])} disabled={data.next === null}>
                Next page
              </button>
            </div>
          </div>
        )}
        {selected !== undefined && <DeadLetterDetailPanel key={selected} seq={selected} onClose={() => setSelected(undefined)} />}
      </div>
      <ConfirmDialog
        open={pending !== undefined}
        title={pending?.kind === 'purge' ? 'Purge dead letters?' : 'Replay dead letters?'}
        confirmLabel={pending?.kind === 'purge' ? `Purge ${pending.matched}` : `Replay ${pending?.seqs.length ?? 0}`}
        onConfirm={confirm}
        onCancel={() => setPending(undefined)}
      >
        {pending?.kind === 'purge' ? (
          <p>{pending.matched} dead letters match the filter. Purged ones are gone for good: they cannot be replayed.</p>
        ) : (
          <p>{pending?.seqs.length ?? 0} dead letters match the filter. Each runs again with its own call id.</p>
        )}
      </ConfirmDialog>
    </section>
  );
}
