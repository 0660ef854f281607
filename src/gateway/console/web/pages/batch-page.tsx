import { api } from '../api';
import { ErrorNote } from '../components/error-note';
import { IdForm } from '../components/id-form';
import { Link } from '../components/link';
import { formatTime } from '../format';
import { paths } from '../routes';
import { usePoll } from '../use-poll';

/** One batch by id: its state and its items' counts by state, its failures linking to their invocations. */
export function BatchPage(props: { batchId: string }) {
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Batch</h1>
      <IdForm key={props.batchId} label="Batch id" pathOf={paths.batch} initial={props.batchId} />
      {props.batchId !== '' && <BatchDetail batchId={props.batchId} />}
    </section>
  );
}

function BatchDetail(props: { batchId: string }) {
  const { data, error } = usePoll(
    () => api.batch(props.batchId),
    `batch:${props.batchId}`,
    (b) => b.done,
  );
  if (!data) return <ErrorNote error={error} />;
  const percent = Math.round(data.progress * 100);
  return (
    <>
      <ErrorNote error={error} />
      <h2>
        <code>{data.batchId}</code> <span class={`state state-${data.state}`}>{data.done ? 'done' : data.state}</span>
      </h2>
      <p>
        {data.function}.{data.namespace} on queue {data.queue}, created {formatTime(data.createdAtMs)}
        {data.doneAtMs === undefined ? '' : `, done ${formatTime(data.doneAtMs)}`}
      </p>
      <p>
        <label>
          Progress{' '}
          <progress max={100} value={percent}>
            {percent}%
          </progress>
        </label>{' '}
        {percent}% of {data.accepted}
      </p>
      <div class="table-wrap">
        <table class="counts">
          <caption>Items by state</caption>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Items
              </th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row">accepted</th>
              <td class="num">{data.accepted}</td>
            </tr>
            {Object.entries(data.counts).map(([state, n]) => (
              <tr key={state} data-state={state}>
                <th scope="row">{state}</th>
                <td class="num">{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data.failed && data.failed.length > 0 && (
        <>
          <h2>Failed items</h2>
          <ul>
            {data.failed.map((f) => (
              <li key={f.callId}>
                <Link href={paths.invocation(f.callId)}>{f.callId}</Link> {f.state}
                {f.status === undefined ? '' : ` (${f.status})`}
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}
