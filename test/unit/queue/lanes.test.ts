import t from 'tap';
import { queueSpecFor } from '../../../src/queue/topology.js';
import { laneDurable, laneKeyToken, MAX_CONSUMER_NAME } from '../../../src/queue/lanes.js';
import { testConfig } from '../../../src/config/index.js';

/** The longest names asyncfn accepts: a queue name (QUEUE_NAME), a function name and a namespace (DNS labels). */
const LONGEST_QUEUE = 'q'.repeat(64);
const LONGEST_LABEL = 'n'.repeat(63);
const LONGEST_NAMESPACE = 's'.repeat(63);

t.test('names that fit are kept as they were: running deployments keep their consumers', async (t) => {
  t.equal(laneDurable('faas-workers', { name: 'figlet', namespace: 'openfaas-fn' }), 'faas-workers_f_figlet_openfaas-fn');
  t.equal(laneDurable('faas-workers', { name: 'figlet', namespace: 'openfaas-fn', key: 'tenant-42' }), 'faas-workers_k_figlet_openfaas-fn_tenant-42');
  const key = 'k'.repeat(52);
  const durable = `${LONGEST_QUEUE}-workers_k_${LONGEST_LABEL}_${LONGEST_NAMESPACE}_${key}`;
  t.equal(durable.length, MAX_CONSUMER_NAME);
  t.equal(
    laneDurable(`${LONGEST_QUEUE}-workers`, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key }),
    durable,
    'a 52-character key with the longest names: 255 exactly',
  );
});

t.test('the longest accepted names and a readable 64-character key give a consumer name JetStream takes', async (t) => {
  const queueDurable = queueSpecFor(testConfig(), LONGEST_QUEUE).durable;
  const key = 'k'.repeat(64);
  t.equal(laneKeyToken(key), key, 'the key is kept readable in its subject');
  const durable = laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key: laneKeyToken(key) });
  t.ok(durable.length <= MAX_CONSUMER_NAME, `${durable.length} characters`);
  t.ok(durable.startsWith(`${queueDurable}_k_${LONGEST_LABEL}_${LONGEST_NAMESPACE}_h`), 'its function, namespace and queue stay readable');
  t.equal(durable, laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key }), 'the same for the same key');
  t.not(
    durable,
    laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key: `${'k'.repeat(63)}j` }),
    'another key of the same length has another consumer',
  );
  const hashedKey = laneKeyToken('tenant é.1');
  t.not(durable, laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key: hashedKey }), 'a hashed key has its own');
  t.ok(laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key: hashedKey }).length <= MAX_CONSUMER_NAME);
  t.ok(laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE }).length <= MAX_CONSUMER_NAME, "the function's own lane");
});

t.test('every readable key length with the longest names stays within the limit, and the name changes only past it', async (t) => {
  const queueDurable = `${LONGEST_QUEUE}-workers`;
  for (let n = 1; n <= 64; n++) {
    const key = 'k'.repeat(n);
    const durable = laneDurable(queueDurable, { name: LONGEST_LABEL, namespace: LONGEST_NAMESPACE, key });
    const readable = `${queueDurable}_k_${LONGEST_LABEL}_${LONGEST_NAMESPACE}_${key}`;
    t.ok(durable.length <= MAX_CONSUMER_NAME, `key of ${n}: ${durable.length} characters`);
    t.equal(durable === readable, readable.length <= MAX_CONSUMER_NAME, `key of ${n}: readable exactly when it fits`);
  }
});
