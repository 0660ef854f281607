import type { Dispatcher } from 'undici';

/** An HTTP answer read whole: its status, headers, text, and the text as JSON when it is JSON. */
export interface JsonAnswer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly text: string;
  /** The body parsed as JSON; undefined when it is not JSON (an empty 202, a plain-text error). */
  readonly json: unknown;
}

/** Reads an undici response to its end as a {@link JsonAnswer}. */
export async function readAnswer(res: Dispatcher.ResponseData): Promise<JsonAnswer> {
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}
