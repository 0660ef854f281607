/**
 * figlet: renders the request body as ASCII art, like the `figlet` function in the OpenFaaS
 * store. The input is capped at 1 KiB because rendering cost grows with it.
 */
import figletLib from 'figlet';
import { textResponse, type SampleFunction } from '../sample-function.js';

export const figlet: SampleFunction = {
  name: 'figlet',
  maxBodyBytes: 1024,
  async handle(req) {
    const text = req.body.toString('utf8').trim();
    const art = figletLib.textSync(text === '' ? 'asyncfn' : text);
    return textResponse(200, art.endsWith('\n') ? art : `${art}\n`);
  },
};
