import { useRef } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote } from '../components/error-note';
import { Sparkline } from '../components/sparkline';
import { appendSample, formatCount, formatDuration, ratesOf, type CounterSample } from '../format';
import type { QueueJson, QueuesJson } from '../types';
import { usePoll } from '../use-poll';

const KIND_LABELS: Readonly<Record<QueueJson['kind'], string>> = { queue: 'queue', delayed: 'delayed', callbacks: 'callbacks', deadLetters: 'dead letters' };

/** Every queue with its lanes, live, and a sparkline of deliveries per second from successive reads. */
export function QueuesPage() {
  const samples = useRef(new Map<string, CounterSample[]>());
  const { data, error } = usePoll(async (): Promise<QueuesJson> => {
    const doc = await api.queues();
    const atMs = Date.parse(doc.at);
    for (const q of doc.queues) {
      if (q.delivered !== null) samples.current.set(q.name, appendSample(samples.current.get(q.name) ?? [], { atMs, value: q.delivered }));
    }
    return doc;
  }, 'queues');

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Queues</h1>
      <ErrorNote error={error} />
      {data && (
        <div class="table-wrap">
          <table class="queues">
            <caption>
              Counts at <time dateTime={data.at}>{data.at}</time>; a queue's lanes (functions, concurrency keys) under it
            </caption>
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Pending
                </th>
                <th scope="col" class="num">
                  In flight
                </th>
                <th scope="col" class="num">
                  Retry-wait
                </th>
                <th scope="col" class="num">
                  Ack-pending
                </th>
                <th scope="col" class="num">
                  Redelivered
                </th>
                <th scope="col" class="num">
                  Consumers
                </th>
                <th scope="col" class="num">
                  Oldest
                </th>
                <th scope="col">Deliveries/s</th>
              </tr>
            </thead>
            <tbody>{data.queues.map((q) => queueRows(q, ratesOf(samples.current.get(q.name) ?? [])))}</tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function queueRows(q: QueueJson, rates: readonly number[]) {
  const last = rates[rates.length - 1];
  return [
    <tr key={q.name} data-queue={q.name}>
      <th scope="row">{q.name}</th>
      <td>{KIND_LABELS[q.kind]}</td>
      <td class="num" data-col="pending">
        {q.pending}
      </td>
      <td class="num" data-col="inFlight">
        {formatCount(q.inFlight)}
      </td>
      <td class="num" data-col="waitingRetries">
        {formatCount(q.waitingRetries)}
      </td>
      <td class="num" data-col="ackPending">
        {formatCount(q.ackPending)}
      </td>
      <td class="num" data-col="redelivered">
        {formatCount(q.redelivered)}
      </td>
      <td class="num" data-col="consumers">
        {q.consumers}
      </td>
      <td class="num">{formatDuration(q.oldestAgeMs)}</td>
      <td>
        {q.delivered === null ? (
          '–'
        ) : (
          <span class="spark">
            <Sparkline values={rates} label={`deliveries per second of ${q.name}, last two minutes`} />
            <span class="rate">{last === undefined ? '…' : last.toFixed(1)}</span>
          </span>
        )}
      </td>
    </tr>,
    ...q.lanes.map((l) => (
      <tr key={`${q.name}/${l.lane}`} class="lane" data-lane={l.lane}>
        <th scope="row">
          <span class="lane-name">{l.lane}</span>
        </th>
        <td>{l.limit === null ? 'lane' : `lane ≤${l.limit}`}</td>
        <td class="num" data-col="pending">
          {l.pending}
        </td>
        <td class="num" data-col="inFlight">
          {formatCount(l.inFlight)}
        </td>
        <td class="num" data-col="waitingRetries">
          {formatCount(l.waitingRetries)}
        </td>
        <td class="num" data-col="ackPending">
          {l.ackPending}
        </td>
        <td class="num">–</td>
        <td class="num">–</td>
        <td class="num">–</td>
        <td />
      </tr>
    )),
  ];
}
