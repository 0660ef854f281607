import { useEffect, useState } from 'preact/hooks';

/** Loads once per `key` what does not change (a dead letter's detail): no polling. */
export function useLoad<T>(load: () => Promise<T>, key: string): { data: T | undefined; error: Error | undefined } {
  const [state, setState] = useState<{ data: T | undefined; error: Error | undefined }>({ data: undefined, error: undefined });
  useEffect(() => {
    let stopped = false;
    setState({ data: undefined, error: undefined });
    load().then(
      (data) => !stopped && setState({ data, error: undefined }),
      (err: unknown) => !stopped && setState({ data: undefined, error: err instanceof Error ? err : new Error(String(err)) }),
    );
    return () => {
      stopped = true;
    };
    // `load` is a new closure each render; `key` names what it loads.
  }, [key]);
  return state;
}
