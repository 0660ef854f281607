import { request } from 'undici';

/** The value of one sample in Prometheus text format whose labels include `labels`; 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** The text of `<url>/metrics`. */
export const scrape = async (url: string): Promise<string> => (await request(`${url}/metrics`)).body.text();
