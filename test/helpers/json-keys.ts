/**
 * The keys that occur more than once in one object of a JSON text, at any depth, each as
 * `path.key` (top level: just `key`). JSON.parse keeps the last of repeated keys silently, so a
 * log line has to be checked as text: this walks it with a small tokenizer (strings with their
 * escapes, braces, brackets, commas, colons). It assumes valid JSON; parse it first to be sure.
 */
export function repeatedKeys(json: string): string[] {
  type Frame = { readonly object: boolean; readonly keys: Set<string>; readonly path: string; expectKey: boolean; lastKey: string };
  const stack: Frame[] = [];
  const repeated: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      const text = JSON.parse(json.slice(i, end + 1)) as string;
      if (top?.object && top.expectKey) {
        if (top.keys.has(text)) repeated.push(top.path === '' ? text : `${top.path}.${text}`);
        top.keys.add(text);
        top.lastKey = text;
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      // A container's path is its parent object's key (arrays keep their parent's path).
      const path = top === undefined ? '' : top.object ? (top.path === '' ? top.lastKey : `${top.path}.${top.lastKey}`) : top.path;
      stack.push({ object: c === '{', keys: new Set(), path, expectKey: c === '{', lastKey: '' });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',' && top?.object) {
      top.expectKey = true;
    }
  }
  return repeated;
}
