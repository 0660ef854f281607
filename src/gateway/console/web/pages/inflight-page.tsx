import { useState } from 'preact/hooks';
import { api } from '../api';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorNote } from '../components/error-note';
import { Link } from '../components/link';
import { formatDuration } from '../format';
import { paths } from '../routes';
import type { InFlightEntry } from '../types';
import { usePoll } from '../use-poll';

/** The invocations running now on every worker, with their machine state; cancel one with a confirmation. */
export function InFlightPage() {
  const [fnInput, setFnInput] = useState('');
  const [fn, setFn] = useState('');
  const [toCancel, setToCancel] = useState<InFlightEntry | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<Error | undefined>(undefined);
  const { data, error, refresh } = usePoll(() => api.inFlight(fn === '' ? undefined : fn), `inflight:${fn}`);

  const onFilter = (e: Event): void => {
    e.preventDefault();
    setFn(fnInput.trim());
  };
  const confirmCancel = async (): Promise<void> => {
    const entry = toCancel;
    setToCancel(undefined);
    if (!entry) return;
    try {
      await api.cancel(entry.callId);
      setActionError(undefined);
      setMessage(`Cancellation of ${entry.callId} requested.`);
      refresh();
    } catch (err) {
      setActionError(err as Error);
    }
  };

  const rows = (data?.workers ?? []).flatMap((w) => w.invocations.map((i) => ({ worker: w.worker, ...i })));
  const truncated = (data?.workers ?? []).some((w) => w.truncated);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">In flight</h1>
      <form class="inline" onSubmit={onFilter} role="search">
        <label>
          Function
          <input name="function" value={fnInput} onInput={(e) => setFnInput(e.currentTarget.value)} placeholder="name or name.namespace" spellcheck={false} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <p role="status" class="status">
        {message}
      </p>
      <ErrorNote error={error ?? actionError} />
      {data && (
        <div class="table-wrap">
          <table class="inflight">
            <caption>
              {data.total} running on {data.workers.length} worker{data.workers.length === 1 ? '' : 's'}
              {fn === '' ? '' : ` (function ${fn})`}
              {truncated ? '; the oldest listed' : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Call id</th>
                <th scope="col">Function</th>
                <th scope="col">Queue</th>
                <th scope="col">Worker</th>
                <th scope="col">State</th>
                <th scope="col" class="num">
                  Attempt
                </th>
                <th scope="col" class="num">
                  Elapsed
                </th>
                <th scope="col">Progress</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.length === 0 && (
                <tr>
                  <td colSpan={9} class="empty">
                    Nothing running.
                  </td>
                </tr>
              )}
              {rows.map((r) => (
                <tr key={r.callId} data-call-id={r.callId}>
                  <th scope="row">
                    <Link href={paths.invocation(r.callId)}>{r.callId}</Link>
                  </th>
                  <td>
                    {r.function}.{r.namespace}
                  </td>
                  <td>{r.lane ? `${r.queue} (${r.lane})` : r.queue}</td>
                  <td>{r.worker}</td>
                  <td data-col="state">
                    <span class={`state state-${r.state}`}>{r.state}</span>
                  </td>
                  <td class="num">{r.attempt}</td>
                  <td class="num">{formatDuration(r.elapsedMs)}</td>
                  <td data-col="progress">
                    {r.progress ? (
                      <>
                        <progress max={100} value={r.progress.percent}>
                          {r.progress.percent}%
                        </progress>{' '}
                        {r.progress.percent}% {r.progress.message}
                      </>
                    ) : (
                      '–'
                    )}
                  </td>
                  <td>
                    <button type="button" class="danger" onClick={() => setToCancel(r)} aria-label={`Cancel ${r.callId}`}>
                      Cancel
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={toCancel !== undefined}
        title="Cancel this invocation?"
        confirmLabel="Cancel invocation"
        onConfirm={() => void confirmCancel()}
        onCancel={() => setToCancel(undefined)}
      >
        <p>
          <code>{toCancel?.callId}</code> ({toCancel?.function}) is {toCancel?.state}: its function call is aborted and its callback says 499.
        </p>
      </ConfirmDialog>
    </section>
  );
}
