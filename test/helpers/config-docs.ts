import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { VARIABLE_DOCS, VariablesSchema, type VariableDoc } from '../../src/config/variables.js';
import { REPO_ROOT } from './deploy.js';

/**
 * The README's configuration tables, generated from src/config/variables.ts: each variable's
 * meaning and default are written there once. test/unit/config/readme-table.test.ts fails when
 * the README differs; `node --import tsx test/helpers/config-docs.ts` rewrites the README
 * between the markers.
 */

type Table = NonNullable<VariableDoc['table']>;

const HEADERS: Readonly<Record<Table, string>> = {
  main: '| variable | default | meaning |\n|---|---|---|',
  nats: '| variable | meaning |\n|---|---|',
};

export const README_PATH = join(REPO_ROOT, 'README.md');

/** `<!-- config-table:main -->` … `<!-- /config-table:main -->`: what lies between is generated. */
const markers = (table: Table): [string, string] => [`<!-- config-table:${table} -->`, `<!-- /config-table:${table} -->`];

/** The default column: the text the schema parses when the variable is unset, or the documented computed default. */
function defaultOf(schema: z.ZodType, doc: VariableDoc): string {
  const def = schema._zod.def;
  const text = def.type === 'prefault' ? String((def as unknown as { defaultValue: unknown }).defaultValue) : undefined;
  const value = doc.default ?? (text === undefined || text === '' ? '—' : `\`${text}\``);
  return doc.defaultNote === undefined ? value : `${value} (${doc.defaultNote})`;
}

/** One table's markdown, rows in the order of the schema. */
export function renderConfigTable(table: Table): string {
  const rows = Object.entries(VariablesSchema.shape).flatMap(([name, schema]) => {
    const doc = VARIABLE_DOCS.get(schema);
    if (doc === undefined) throw new Error(`variables.ts: ${name} has no documentation (register it in VARIABLE_DOCS)`);
    if ((doc.table ?? 'main') !== table) return [];
    return [table === 'main' ? `| \`${name}\` | ${defaultOf(schema, doc)} | ${doc.meaning} |` : `| \`${name}\` | ${doc.meaning} |`];
  });
  return [HEADERS[table], ...rows].join('\n');
}

/** The README with every generated table replaced; throws if a marker is missing. */
export function withConfigTables(readme: string): string {
  let result = readme;
  for (const table of Object.keys(HEADERS) as Table[]) {
    const [open, close] = markers(table);
    const start = result.indexOf(open);
    const end = result.indexOf(close);
    if (start === -1 || end < start) throw new Error(`README.md: no ${open} … ${close} section`);
    result = `${result.slice(0, start + open.length)}\n${renderConfigTable(table)}\n${result.slice(end)}`;
  }
  return result;
}

/** The rows of a markdown table between a table's markers: first cell (backticks removed) → the other cells. */
export function readmeTableRows(readme: string, table: Table): Map<string, string[]> {
  const [open, close] = markers(table);
  const section = readme.slice(readme.indexOf(open) + open.length, readme.indexOf(close));
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line
      .slice(1, -1)
      .split(' | ')
      .map((cell) => cell.trim());
    rows.set(cells[0]!.replaceAll('`', ''), cells.slice(1));
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const readme = await readFile(README_PATH, 'utf8');
  const updated = withConfigTables(readme);
  if (updated !== readme) await writeFile(README_PATH, updated);
  console.log(updated === readme ? 'README.md: configuration tables up to date' : 'README.md: configuration tables rewritten');
}
