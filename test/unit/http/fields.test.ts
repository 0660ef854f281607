import t from 'tap';
import { isFieldValue } from '../../../src/http/fields.js';

t.test('isFieldValue: HTAB, visible ASCII, spaces and obs-text; no other control, no DEL, nothing above 0xff', async (t) => {
  for (const [value, valid] of [
    ['', true],
    ['application/octet-stream', true],
    ['a\tb c', true],
    ['\x80caf\xe9\xff', true],
    ['~!"#', true],
    ['line\r\nInjected: yes', false],
    ['lone\r', false],
    ['lone\n', false],
    ['nul\x00', false],
    ['\x1f', false],
    ['del\x7f', false],
    ['\u0100', false],
    ['emoji \u{1f600}', false],
  ] as const) {
    t.equal(isFieldValue(value), valid, JSON.stringify(value));
  }
});
