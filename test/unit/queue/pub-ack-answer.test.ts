import t from 'tap';
import { PLAIN_PUB_ACK, readAnswer } from '../../../src/queue/confirmer.js';

t.test('readAnswer reads every answer as JSON.parse does', async (t) => {
  const answers = [
    '{"stream":"faas-request","seq":1}',
    '{"stream":"faas-request", "seq":1}',
    '{"stream":"faas-request", "seq":7,"duplicate": true}',
    '{"stream":"faas-request","seq":9007199254740991}',
    '{"stream":"s","seq":42,"duplicate":true}',
    '{"stream":"s","seq":42,"domain":"hub"}',
    '{"stream":"s","seq":42,"domain":"hub","duplicate":true}',
    '{"stream":"s","seq":42,"domain":""}',
    // Not the plain form: JSON.parse reads them.
    '{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"},"stream":"s","seq":0}',
    '{"stream":"s","seq":42,"val":"7"}',
    '{"seq":42,"stream":"s"}',
    '{"stream":"a\\"b","seq":1}',
    '{"stream":"s","seq":1e3}',
    '{"stream":"s","seq":-1}',
    '{"stream":"s","seq":1,"duplicate":false}',
  ];
  for (const answer of answers) {
    const parsed = JSON.parse(answer) as Record<string, unknown>;
    t.same(readAnswer(answer), PLAIN_PUB_ACK.test(answer) ? { duplicate: false, ...parsed } : parsed, answer);
  }
  t.ok(PLAIN_PUB_ACK.test(answers[1]!), "nats-server's common answer takes the fast path");
  t.notOk(PLAIN_PUB_ACK.test('{"stream":"s","seq":1234567890123456}'), 'a sequence past 15 digits is left to JSON.parse');
  t.same(readAnswer('not json'), {}, 'not JSON: nothing read');
  t.same(readAnswer(''), {});
});
