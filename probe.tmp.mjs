import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, AckPolicy } from '@nats-io/jetstream';
const nc = await connect({ servers: process.argv[2] });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
await jsm.streams.add({ name: 'P', subjects: ['p.>'], retention: 'workqueue' });
const ACK_WAIT = 2000;
await jsm.consumers.add('P', { durable_name: 'c', ack_policy: AckPolicy.Explicit, ack_wait: ACK_WAIT * 1e6, max_deliver: -1 });
const c = await js.consumers.get('P', 'c');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mode = process.argv[3];
await js.publish('p.x', 'hello');
const t0 = Date.now();
const next = async (ms) => { const m = await c.next({ expires: ms }); return m; };
const d1 = await next(5000);
console.log('d1 redelivered?', d1.info.redeliveryCount, 'at', Date.now() - t0);
// let ack_wait lapse
const d2 = await next(5000);
console.log('d2 delivery count', d2.info.redeliveryCount, 'at', Date.now() - t0);
if (mode === 'nak') d2.nak(1000); else d2.working();
// keep extending through d1 every 1 s for 6 s, count further deliveries
let further = 0;
const watcher = (async () => { while (Date.now() - t0 < 12000) { const m = await c.next({ expires: 1000 }).catch(() => null); if (m) { further++; console.log('  further delivery', m.info.redeliveryCount, 'at', Date.now() - t0); if (mode === 'nak') m.nak(1000); else m.working(); } } })();
for (let i = 0; i < 6; i++) { await sleep(1000); d1.working(); }
const acked = await d1.ackAck();
console.log('ackAck via d1 after redelivery:', acked, 'at', Date.now() - t0);
await watcher;
const info = await jsm.consumers.info('P', 'c');
console.log(mode, 'further deliveries', further, 'num_ack_pending', info.num_ack_pending, 'num_pending', info.num_pending, 'redelivered', info.num_redelivered);
await nc.close();
