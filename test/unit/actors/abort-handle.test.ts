import t from 'tap';
import { AbortHandle, type AbortLike } from '../../../actors/abort-handle.js';

t.test('aborts once: the reason is kept, the listener called once and then forgotten', async (t) => {
  const handle = new AbortHandle();
  const calls: unknown[] = [];
  handle.addEventListener('abort', () => calls.push(handle.reason), { once: true });
  t.equal(handle.aborted, false);
  t.equal(handle.reason, undefined);
  const first = new Error('the invocation left invoking');
  handle.abort(first);
  handle.abort(new Error('again'));
  t.equal(handle.aborted, true);
  t.equal(handle.reason, first, 'the first reason stays');
  t.same(calls, [first], 'the listener ran once, after the reason was set');
});

t.test('a removed listener is not called; another one may then be added', async (t) => {
  const handle = new AbortHandle();
  const calls: string[] = [];
  const first = (): number => calls.push('first');
  handle.addEventListener('abort', first);
  handle.removeEventListener('abort', first);
  handle.addEventListener('abort', () => calls.push('second'));
  handle.abort('stop');
  t.same(calls, ['second']);
});

t.test('holds one listener: a second one is refused rather than silently dropped', async (t) => {
  const handle = new AbortHandle();
  const listener = (): void => undefined;
  handle.addEventListener('abort', listener);
  handle.addEventListener('abort', listener);
  t.throws(() => handle.addEventListener('abort', () => undefined), /one listener at a time/);
});

t.test('an AbortSignal is an AbortLike: callers outside the hot path pass real ones', async (t) => {
  const controller = new AbortController();
  const signal: AbortLike = controller.signal;
  let called = 0;
  signal.addEventListener('abort', () => (called += 1), { once: true });
  controller.abort('why');
  t.equal(signal.aborted, true);
  t.equal(signal.reason, 'why');
  t.equal(called, 1);
});

t.test('a listener may be an object with handleEvent, called with itself as `this`, by an AbortHandle and by an AbortSignal', async (t) => {
  class Listening {
    calls = 0;
    handleEvent(): void {
      this.calls += 1;
    }
  }
  const handle = new AbortHandle();
  const onHandle = new Listening();
  handle.addEventListener('abort', onHandle, { once: true });
  handle.abort('stop');
  handle.abort('again');
  t.equal(onHandle.calls, 1, 'called once by the handle');

  const removed = new Listening();
  const other = new AbortHandle();
  other.addEventListener('abort', removed);
  other.removeEventListener('abort', removed);
  other.abort('stop');
  t.equal(removed.calls, 0, 'a removed object is not called');

  const controller = new AbortController();
  const signal: AbortLike = controller.signal;
  const onSignal = new Listening();
  signal.addEventListener('abort', onSignal, { once: true });
  controller.abort('why');
  t.equal(onSignal.calls, 1, 'called once by the signal');
});
