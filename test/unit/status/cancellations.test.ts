import t from 'tap';
import { MarkerMap, markerApplies, markerExpired, markerTimeMs, type Marker } from '../../../src/status/cancellations.js';

const marker = (atMs: number, storedAtMs = atMs, revision = 1): Marker => ({ atMs, storedAtMs, revision });

t.test("a marker's time: now, or the enqueue time of the invocation meant when this clock is behind it", async (t) => {
  t.equal(markerTimeMs(1000, undefined), 1000);
  t.equal(markerTimeMs(1000, 900), 1000);
  t.equal(markerTimeMs(1000, 1200), 1200, 'never older than the invocation it cancels');
});

t.test('a marker cancels deliveries of an invocation enqueued at or before it, not one enqueued later (a replay, a reused call id)', async (t) => {
  t.ok(markerApplies(marker(1000), 999));
  t.ok(markerApplies(marker(1000), 1000));
  t.notOk(markerApplies(marker(1000), 1001));
  t.ok(markerApplies(marker(Number.NaN), 5000), 'an unreadable marker cancels whatever it names');
});

t.test('markers the bucket forgot are dropped by age: from the oldest at each new one, and when looked up', async (t) => {
  let nowMs = 0;
  const markers = new MarkerMap(100, () => nowMs);
  markers.put('a', marker(0));
  nowMs = 50;
  markers.put('b', marker(50));
  t.equal(markers.size, 2);
  nowMs = 120;
  markers.put('c', marker(120));
  t.equal(markers.size, 2, 'a is older than the age limit: dropped');
  t.equal(markers.get('a'), undefined);
  t.ok(markers.get('b'));
  nowMs = 150;
  t.equal(markers.get('b'), undefined, 'b expired by the time it is looked up');
  t.equal(markers.size, 1);
  t.ok(markerExpired(marker(0), 100, 100));
  t.notOk(markerExpired(marker(0), 0, 1e12), 'no age limit: kept');
});

t.test('a marker stored again moves to the end: the order stays the order of storing', async (t) => {
  let nowMs = 0;
  const markers = new MarkerMap(100, () => nowMs);
  markers.put('a', marker(0));
  markers.put('b', marker(10));
  nowMs = 90;
  markers.put('a', marker(90));
  nowMs = 115;
  markers.put('c', marker(115));
  t.equal(markers.size, 2, 'b dropped, a (stored again at 90) kept');
  t.ok(markers.get('a'));
});
