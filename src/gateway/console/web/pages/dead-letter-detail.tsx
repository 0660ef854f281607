import { api } from '../api';
import { ErrorNote } from '../components/error-note';
import { formatBytes, formatTime } from '../format';
import { useLoad } from '../use-load';

/** One dead letter in full: why, its request (secrets redacted by the gateway) and a body preview. */
export function DeadLetterDetailPanel(props: { seq: number; onClose: () => void }) {
  const { data, error } = useLoad(() => api.deadLetter(props.seq), `dead-letter:${props.seq}`);
  return (
    <aside class="panel" aria-labelledby="detail-title">
      <div class="panel-head">
        <h2 id="detail-title">Dead letter {props.seq}</h2>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </div>
      <ErrorNote error={error} />
      {data && (
        <>
          <dl class="facts">
            <dt>Call id</dt>
            <dd>{data.callId ?? '–'}</dd>
            <dt>Reason</dt>
            <dd data-field="reason">{data.reason}</dd>
            <dt>Last status</dt>
            <dd>{data.lastStatus ?? '–'}</dd>
            <dt>Attempts</dt>
            <dd>{data.attempts}</dd>
            <dt>Error</dt>
            <dd>{data.error ?? data.decodeError ?? '–'}</dd>
            <dt>Request</dt>
            <dd>
              <code>
                {data.method ?? '?'} {data.path ?? ''}
                {data.query ? `?${data.query}` : ''}
              </code>
            </dd>
            <dt>Callback</dt>
            <dd>{data.callbackUrl ?? '–'}</dd>
            <dt>Enqueued</dt>
            <dd>{formatTime(data.enqueuedAtMs)}</dd>
            <dt>Dead-lettered</dt>
            <dd>{formatTime(data.atMs)}</dd>
          </dl>
          <h3>Headers</h3>
          <div class="table-wrap">
            <table class="headers">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Value</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(data.headers).map(([name, value]) => (
                  <tr key={name}>
                    <th scope="row">{name}</th>
                    <td>{Array.isArray(value) ? value.join(', ') : value}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h3>
            Body ({formatBytes(data.bodyBytes)}
            {data.bodyTruncated ? ', the start' : ''}
            {data.bodyEncoding === 'base64' ? ', base64' : ''})
          </h3>
          <pre class="body">{data.body}</pre>
        </>
      )}
    </aside>
  );
}
