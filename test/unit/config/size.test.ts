import t from 'tap';
import { parseSizeBytes } from '../../../src/config/index.js';

t.test('valid sizes, in bytes', async (t) => {
  const valid: ReadonlyArray<[string, number]> = [
    ['1048576', 1_048_576],
    ['0', 0],
    ['100B', 100],
    ['512KiB', 524_288],
    ['1000KiB', 1_024_000],
    ['1MiB', 1_048_576],
    ['1GiB', 1_073_741_824],
    ['1TiB', 1_099_511_627_776],
    ['1000KB', 1_000_000],
    ['1MB', 1_000_000],
    ['1GB', 1_000_000_000],
    ['1.5KiB', 1_536],
    ['1.1KB', 1_100], // exact arithmetic
    ['1mib', 1_048_576],
    ['64 KiB', 65_536],
  ];
  for (const [text, bytes] of valid) t.equal(parseSizeBytes(text), bytes, JSON.stringify(text));
});

t.test('invalid sizes are undefined', async (t) => {
  const invalid = ['', 'abc', '-1', '1M', '1K', '1XB', '1.5B', '0.1', 'MiB', '1e6', '1 000', '99999999TiB'];
  for (const text of invalid) t.equal(parseSizeBytes(text), undefined, JSON.stringify(text));
});
