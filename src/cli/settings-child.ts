/**
 * The child process settings-apart.ts starts: reads a command's settings (settings.ts) with the
 * request given as its one argument (JSON) and the environment it inherited, writes them to stdout
 * V8-serialized, or the failure the same way, and exits.
 */
import { serialize } from 'node:v8';
import { failureOf, readSettings, type SettingsMessage, type SettingsRequest } from './settings.js';

const request = JSON.parse(process.argv[2] ?? '') as SettingsRequest;
let message: SettingsMessage;
try {
  message = { settings: await readSettings(request, process.env) };
} catch (err) {
  message = { failure: failureOf(err) };
}
// A pipe: written synchronously on Linux, and in full before the process exits anywhere.
process.stdout.write(serialize(message));
