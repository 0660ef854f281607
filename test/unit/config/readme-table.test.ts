import { readFile } from 'node:fs/promises';
import t from 'tap';
import { VARIABLE_NAMES } from '../../../src/config/variables.js';
import { README_PATH, readmeTableRows, renderConfigTable, withConfigTables } from '../../helpers/config-docs.js';

// The README's configuration tables are generated from src/config/variables.ts, where each
// variable's default and meaning are written once. Regenerate with:
//   node --import tsx test/helpers/config-docs.ts

const readme = await readFile(README_PATH, 'utf8');
const main = readmeTableRows(readme, 'main');
const nats = readmeTableRows(readme, 'nats');

t.test('every variable of the schema has a README row, and every README row is a variable', async (t) => {
  t.ok(main.size >= 40 && nats.size >= 8, `README: ${main.size} + ${nats.size} rows`);
  for (const name of VARIABLE_NAMES) t.ok(main.has(name) || nats.has(name), `${name} is in a README configuration table`);
  for (const name of [...main.keys(), ...nats.keys()]) t.ok(VARIABLE_NAMES.includes(name), `README row ${name} is a variable`);
  t.equal(new Set([...main.keys(), ...nats.keys()]).size, main.size + nats.size, 'no variable is listed twice');
});

t.test('the README shows the defaults the schema parses when a variable is unset', async (t) => {
  const generated = readmeTableRows(`<!-- config-table:main -->\n${renderConfigTable('main')}\n<!-- /config-table:main -->`, 'main');
  for (const [name, [defaultCell]] of generated) t.equal(main.get(name)?.[0], defaultCell, `${name}: default`);
  t.equal(main.get('ack_wait')?.[0], '`60s`', 'read from the schema: ack_wait');
  t.equal(main.get('max_ack_pending')?.[0], '`max_inflight + 10000`', 'a computed default, with its constant');
});

t.test('the README configuration tables are what the schema generates', async (t) => {
  t.equal(withConfigTables(readme), readme, 'README.md differs: run npm run docs:config');
});
