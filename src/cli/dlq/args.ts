import { parseArgs } from 'node:util';
import { parseFilter, parseSeq, type DeadLetterFilter, type Parsed } from '../../dead-letters/filters.js';
import { describeError } from '../../errors.js';

export const DLQ_COMMANDS = ['list', 'show', 'replay', 'purge'] as const;
export type DlqCommandName = (typeof DLQ_COMMANDS)[number];

/** `asyncfn dlq …` after parsing: what to do, to which dead letters. */
export type DlqArgs =
  | { readonly command: 'help' }
  | { readonly command: 'list'; readonly filter: DeadLetterFilter; readonly json: boolean }
  | { readonly command: 'show'; readonly seq: number; readonly json: boolean }
  | { readonly command: 'replay'; readonly filter: DeadLetterFilter; readonly yes: boolean; readonly keep: boolean; readonly dryRun: boolean }
  | { readonly command: 'purge'; readonly filter: DeadLetterFilter; readonly yes: boolean };

export const DLQ_USAGE = `Usage: asyncfn dlq <command> [filters] [options]

Commands:
  list [filters] [--json]             dead letters, one per line, then a count
  show <seq> [--json]                 one dead letter: metadata and the original request
  replay [filters|seqs] [--yes] [--keep] [--dry-run]
                                      publish the original invocations to their queues again,
                                      same call id, then delete the dead letters (--keep keeps them);
                                      more than 10 need --yes; --dry-run only counts them
  purge [filters|seqs] [--yes]        delete dead letters; --yes unless sequences are given

Filters (all must match):
  <seq>...                            dead-letter stream sequence numbers
  --function <name>                   function name, or name.namespace
  --queue <name>                      queue the invocation came from (faas-request by default)
  --reason <reason>                   retriesExhausted, nonRetryable, expired, poison, callbackFailed
  --since <duration|time>             dead-lettered at or after: 30m, 1h (that long ago) or RFC 3339
  --until <duration|time>             dead-lettered at or before`;

const OPTIONS = {
  function: { type: 'string' },
  queue: { type: 'string' },
  reason: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  keep: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which options each command takes besides the filters. */
const COMMAND_FLAGS: Readonly<Record<DlqCommandName, readonly string[]>> = {
  list: ['json'],
  show: ['json'],
  replay: ['yes', 'keep', 'dry-run'],
  purge: ['yes'],
};
const FILTER_OPTIONS = ['function', 'queue', 'reason', 'since', 'until'];

/** Parses the arguments after `dlq`; `nowMs` anchors relative times such as `--since 1h`. */
export function parseDlqArgs(args: readonly string[], nowMs: number): Parsed<DlqArgs> {
  let parsed: ReturnType<typeof parseRaw>;
  try {
    parsed = parseRaw(args);
  } catch (err) {
    // node's messages go on with advice about "--"; the first sentence says what is wrong.
    const message = describeError(err);
    return fail(message.split(/\.\s/)[0] ?? message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { ok: true, value: { command: 'help' } };
  const [command, ...rest] = positionals;
  if (command === undefined) return fail(`missing command: one of ${DLQ_COMMANDS.join(', ')}`);
  if (!isCommand(command)) return fail(`unknown command "${command}": one of ${DLQ_COMMANDS.join(', ')}`);

  const allowed = new Set([...COMMAND_FLAGS[command], ...(command === 'show' ? [] : FILTER_OPTIONS)]);
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && !allowed.has(name)) return fail(`--${name} does not apply to "${command}"`);
  }

  if (command === 'show') {
    if (rest.length !== 1) return fail('show takes exactly one dead-letter sequence number');
    const seq = parseSeq(rest[0]!);
    if (seq === undefined) return fail(`"${rest[0]}" is not a dead-letter sequence number`);
    return { ok: true, value: { command, seq, json: values.json === true } };
  }

  const filter = parseFilter(values, rest, nowMs);
  if (!filter.ok) return filter;
  switch (command) {
    case 'list':
      return { ok: true, value: { command, filter: filter.value, json: values.json === true } };
    case 'replay':
      return { ok: true, value: { command, filter: filter.value, yes: values.yes === true, keep: values.keep === true, dryRun: values['dry-run'] === true } };
    case 'purge':
      return { ok: true, value: { command, filter: filter.value, yes: values.yes === true } };
  }
}

function parseRaw(args: readonly string[]) {
  return parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
}

function isCommand(text: string): text is DlqCommandName {
  return (DLQ_COMMANDS as readonly string[]).includes(text);
}

function fail<T>(error: string): Parsed<T> {
  return { ok: false, error };
}
