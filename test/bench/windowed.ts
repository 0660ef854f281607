/** Runs `op(0..count-1)` in order of start, with at most `window` in flight. */
export async function windowed(count: number, window: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}
