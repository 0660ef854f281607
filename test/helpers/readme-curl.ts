/**
 * Runs the `curl` commands of README examples with fetch, so the tests need no curl binary and
 * run the README's text itself: quoting, headers and bodies as a reader would paste them. Only
 * what the README uses is understood; anything else throws, so a new example cannot be skipped.
 */

/** Splits shell words: '…' (may span lines), "…" (with \" and \\), backslash-newline, # comments. */
export function shellWords(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new Error('unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let quoted = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && ['"', '\\', '$', '`'].includes(text[j + 1] ?? '')) j++;
        quoted += text[j];
      }
      if (j >= text.length) throw new Error('unterminated double quote');
      word = (word ?? '') + quoted;
      i = j;
    } else if (c === '\\' && text[i + 1] === '\n') {
      i++;
    } else if (c === '#' && word === undefined) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (word !== undefined) words.push(word);
      word = undefined;
      if (c === '\n' && words.length > 0) {
        commands.push(words);
        words = [];
      }
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  if (words.length > 0) commands.push(words);
  return commands;
}

export interface CurlRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/**
 * One curl command (its words) as a request. `rewrite` is applied to every word, to move the
 * README's addresses (in the URL and in headers such as X-Callback-Url) to the test's.
 */
export function curlRequest(readmeWords: readonly string[], rewrite: (word: string) => string = (w) => w): CurlRequest {
  const words = readmeWords.map(rewrite);
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${words.join(' ')}`);
  let url: string | undefined;
  let method: string | undefined;
  let body: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const next = (): string => {
      const value = words[++i];
      if (value === undefined) throw new Error(`${w} needs a value`);
      return value;
    };
    if (w === '-i' || w === '--include' || w === '-s' || w === '--silent') continue;
    if (w === '-d' || w === '--data' || w === '--data-binary' || w === '--data-raw') {
      body = next();
      // curl -d's default, like curl.
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    } else if (w === '-H' || w === '--header') {
      const header = next();
      const colon = header.indexOf(':');
      headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
    } else if (w === '-X' || w === '--request') {
      method = next();
    } else if (!w.startsWith('-') && url === undefined) {
      url = w;
    } else {
      throw new Error(`readme-curl does not know curl's ${w}`);
    }
  }
  if (url === undefined) throw new Error(`no URL in: ${words.join(' ')}`);
  return { url, method: method ?? (body === undefined ? 'GET' : 'POST'), headers, body };
}

/** Sends a curl command's request; answers status, lower-case headers and body text. */
export async function runCurl(
  words: readonly string[],
  rewrite?: (word: string) => string,
): Promise<{ status: number; headers: Headers; text: string; request: CurlRequest }> {
  const request = curlRequest(words, rewrite);
  const res = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
  return { status: res.status, headers: res.headers, text: await res.text(), request };
}
