import t from 'tap';
import { loadConfig } from '../../../src/config/index.js';
import { isQueueName, reservedQueueName } from '../../../src/config/queue-name.js';
import { BATCH_EVENT_PREFIX, BATCH_EVENTS_STREAM } from '../../../src/queue/batch-events.js';
import {
  BATCHES_BUCKET,
  CALLBACK_STREAM,
  CALLBACK_SUBJECT_PREFIX,
  CANCELLATIONS_BUCKET,
  DEAD_LETTER_STREAM,
  DEAD_LETTER_SUBJECT_PREFIX,
  DELAYED_STREAM,
  delayedSubject,
  IDEMPOTENCY_BUCKET,
  KEYS_BUCKET,
  PAYLOAD_BUCKET,
  payloadStreamName,
  RATE_LIMITS_BUCKET,
  RECORDS_BUCKET,
  RESULTS_BUCKET,
  THROTTLES_BUCKET,
} from '../../../src/queue/topology.js';
import { HOLDS_SUBJECT_PREFIX } from '../../../src/worker/holders.js';
import { problemsOf } from '../../helpers/config-problems.js';

/** A queue `q` is the stream `q` on the subjects `q` and `q.>`. */
const subjectOwner = (subject: string): string => subject.split('.')[0]!;

t.test("a queue name overlapping asyncfn's own streams or subjects is refused, as a malformed one is", async (t) => {
  const kvStreams = [RECORDS_BUCKET, RESULTS_BUCKET, IDEMPOTENCY_BUCKET, CANCELLATIONS_BUCKET, RATE_LIMITS_BUCKET, BATCHES_BUCKET, KEYS_BUCKET, THROTTLES_BUCKET].map(
    (bucket) => `KV_${bucket}`,
  );
  const streams = [DELAYED_STREAM, DEAD_LETTER_STREAM, CALLBACK_STREAM, BATCH_EVENTS_STREAM, payloadStreamName(PAYLOAD_BUCKET), ...kvStreams];
  for (const name of streams) t.notOk(isQueueName(name), `stream ${name}`);
  const subjects = [delayedSubject('faas-request'), DEAD_LETTER_SUBJECT_PREFIX, CALLBACK_SUBJECT_PREFIX, BATCH_EVENT_PREFIX, HOLDS_SUBJECT_PREFIX];
  for (const subject of subjects) t.notOk(isQueueName(subjectOwner(subject)), `subjects ${subject}…`);
  t.notOk(isQueueName('_INBOX'), "_INBOX: the clients' replies");
  t.match(reservedQueueName('asyncfn'), /overlap asyncfn's own \("asyncfn\.>"\)/, 'the reason says why');

  for (const name of ['a.b', '*', '>', 'queué', '', 'x'.repeat(65)]) t.notOk(isQueueName(name), `malformed ${JSON.stringify(name)}`);
  for (const name of ['faas-request', 'slow-jobs', 'asyncfn2', 'asyncfn_jobs', 'my-asyncfn', 'kv_cache', 'Asyncfn', 'INBOX']) {
    t.ok(isQueueName(name), `${name} is a queue name`);
    t.equal(reservedQueueName(name), undefined);
  }
});

t.test("the worker's queues setting refuses a reserved name, saying why", async (t) => {
  t.match(problemsOf({ queues: 'faas-request,asyncfn' })[0], /^queues: .* names queue "asyncfn", which is reserved: its subjects would overlap asyncfn's own/);
  t.match(problemsOf({ queues: 'KV_asyncfn_invocations' })[0], /names queue "KV_asyncfn_invocations", which is reserved: the prefixes "KV_" and "OBJ_"/);
  t.match(problemsOf({ queues: 'asyncfn-dead-letters:2' })[0], /which is reserved: the prefix "asyncfn-"/);
  t.same(
    loadConfig({ queues: 'faas-request,asyncfn_jobs' }).worker.queues.map((q) => q.name),
    ['faas-request', 'asyncfn_jobs'],
    'a name that only starts like one is no reserved name',
  );
});
