import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote } from '../components/error-note';
import { IdForm } from '../components/id-form';
import { Link } from '../components/link';
import { formatBytes, formatDuration, formatTime, timelineOf, traceUrlOf } from '../format';
import { paths } from '../routes';
import type { InvocationRecord } from '../types';
import { usePoll } from '../use-poll';

/** Record states after which nothing more happens to an invocation: its page stops re-reading it. */
const FINAL_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled', 'deadLettered']);

/** One invocation by call id: its record's timeline, attempts and status, its kept result and trace link. */
export function InvocationPage(props: { callId: string }) {
  const { callId } = props;
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Invocation</h1>
      <IdForm key={callId} label="Call id" pathOf={paths.invocation} initial={callId} />
      {callId !== '' && <InvocationDetail callId={callId} />}
    </section>
  );
}

function InvocationDetail(props: { callId: string }) {
  const { callId } = props;
  const { data, error } = usePoll(
    () => api.invocation(callId),
    `invocation:${callId}`,
    (r) => FINAL_STATES.has(r.state),
  );
  const [traceTemplate, setTraceTemplate] = useState('');
  useEffect(() => {
    api.settings().then(
      (s) => setTraceTemplate(s.traceUrlTemplate),
      () => setTraceTemplate(''),
    );
  }, []);
  if (!data) return <ErrorNote error={error} />;
  const trace = traceUrlOf(traceTemplate, callId);
  return (
    <>
      <ErrorNote error={error} />
      <h2>
        <code>{data.callId}</code> <span class={`state state-${data.state}`}>{data.state}</span>
      </h2>
      <dl class="facts">
        <dt>Function</dt>
        <dd>
          {data.function}.{data.namespace}
        </dd>
        <dt>Queue</dt>
        <dd>{data.queue}</dd>
        <dt>Attempts</dt>
        <dd data-field="attempts">{data.attempts}</dd>
        <dt>Last status</dt>
        <dd data-field="status">{data.status ?? '–'}</dd>
        <dt>Last call took</dt>
        <dd>{formatDuration(data.durationMs)}</dd>
        {data.error && (
          <>
            <dt>Error</dt>
            <dd>{data.error}</dd>
          </>
        )}
        {data.progress && (
          <>
            <dt>Progress</dt>
            <dd>
              <progress max={100} value={data.progress.percent}>
                {data.progress.percent}%
              </progress>{' '}
              {data.progress.percent}% {data.progress.message}
            </dd>
          </>
        )}
        {data.batchId && (
          <>
            <dt>Batch</dt>
            <dd>
              <Link href={paths.batch(data.batchId)}>{data.batchId}</Link>
            </dd>
          </>
        )}
        {data.parentCallId && (
          <>
            <dt>Chained from</dt>
            <dd>
              <Link href={paths.invocation(data.parentCallId)}>{data.parentCallId}</Link>
            </dd>
          </>
        )}
        <dt>Result</dt>
        <dd>{resultOf(data)}</dd>
        {trace && (
          <>
            <dt>Traces</dt>
            <dd>
              <a href={trace} target="_blank" rel="noreferrer noopener">
                Open in the trace viewer
              </a>
            </dd>
          </>
        )}
      </dl>
      <h2>Timeline</h2>
      <ol class="timeline">
        {timelineOf(data).map((step) => (
          <li key={step.label}>
            <time dateTime={new Date(step.atMs).toISOString()}>{formatTime(step.atMs)}</time> {step.label}
          </li>
        ))}
      </ol>
    </>
  );
}

function resultOf(record: InvocationRecord) {
  const r = record.result;
  if (!r) return record.finishedAtMs === undefined ? 'not finished' : 'not kept (X-Store-Result was not asked)';
  if (!r.stored) return `not kept: ${r.reason ?? 'unknown reason'}`;
  return (
    <a href={`/async-function/${encodeURIComponent(record.callId)}/result`} target="_blank" rel="noreferrer">
      {r.status}, {r.contentType ?? 'no content type'}, {formatBytes(r.bytes)}
    </a>
  );
}
