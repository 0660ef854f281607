import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** How often a page re-reads what it shows, ms. */
export const POLL_INTERVAL_MS = 2_000;

export interface Polled<T> {
  readonly data: T | undefined;
  readonly error: Error | undefined;
  /** Reads again now (after an action changed what the page shows). */
  readonly refresh: () => void;
}

/**
 * Calls `load` now and every POLL_INTERVAL_MS after the previous call ended, only while the page
 * is visible (`document.visibilityState`): a console left in a background tab asks nothing of
 * the gateway. Stops once `final` says the data cannot change any more (a finished invocation).
 * A new `key` (the page's parameters) starts over.
 */
export function usePoll<T>(load: () => Promise<T>, key: string, final?: (data: T) => boolean): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const finalRef = useRef(final);
  finalRef.current = final;
  const tickRef = useRef<() => void>(() => undefined);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    setData(undefined);
    setError(undefined);
    const tick = async (): Promise<void> => {
      if (stopped || running) return;
      clearTimeout(timer);
      if (document.visibilityState !== 'visible') return;
      running = true;
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setData(value);
          setError(undefined);
          if (finalRef.current?.(value)) stopped = true;
        }
      } catch (err) {
        if (!stopped) setError(err instanceof Error ? err : new Error(String(err)));
      } finally {
        running = false;
      }
      if (!stopped) timer = setTimeout(() => void tick(), POLL_INTERVAL_MS);
    };
    const onVisibility = (): void => {
      if (document.visibilityState === 'visible') void tick();
      else clearTimeout(timer);
    };
    tickRef.current = () => void tick();
    document.addEventListener('visibilitychange', onVisibility);
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [key]);

  const refresh = useCallback(() => tickRef.current(), []);
  return { data, error, refresh };
}
