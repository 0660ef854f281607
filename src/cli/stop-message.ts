/**
 * What the primary of `gateway_processes` > 1 sends a gateway process to make it drain and exit,
 * as SIGTERM does. A message rather than a signal: Ctrl-C in a terminal already sends SIGINT to
 * every process of the group, and a second signal means "exit now".
 */
export const STOP_MESSAGE = 'asyncfn:stop';

/**
 * Resolves when this process's parent sends STOP_MESSAGE. Listens from the moment it is called
 * (a message sent before anyone listens is lost), so a gateway process calls it first thing.
 */
export function stopMessage(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (message !== STOP_MESSAGE) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}
