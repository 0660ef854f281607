/**
 * The values a process gives the `function_name` label: the first `cap` function names it counts,
 * then one fixed value for every other one. A registry that resolves any name (the URL template)
 * lets any caller name a function; without a bound each new name would add series, and memory,
 * to the gateway and the worker for as long as they run.
 */

/** The `function_name` of every function past the cap. */
export const OTHER_FUNCTIONS_LABEL = '_other';

/** Function names a process labels metrics with by default (`metrics_function_names`). */
export const DEFAULT_FUNCTION_LABEL_CAP = 1000;

/** Maps a function's name to its `function_name` label value. */
export type FunctionLabel = (name: string) => string;

/**
 * One process's bounded set of function label values. Call it when a label set is made (a child
 * looked up once, a gauge set per poll), not per request: it is a Set lookup. `onCapReached` is
 * called once, with the first name refused.
 */
export function functionLabels(cap: number = DEFAULT_FUNCTION_LABEL_CAP, onCapReached?: (cap: number, name: string) => void): FunctionLabel {
  const admitted = new Set<string>();
  let warned = false;
  return (name) => {
    if (admitted.has(name)) return name;
    if (admitted.size < cap) {
      admitted.add(name);
      return name;
    }
    if (!warned) {
      warned = true;
      onCapReached?.(cap, name);
    }
    return OTHER_FUNCTIONS_LABEL;
  };
}
