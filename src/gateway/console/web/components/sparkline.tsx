import { sparklinePoints } from '../format';

const WIDTH = 120;
const HEIGHT = 24;

/** A small inline-SVG line of `values` (a queue's deliveries per second), labelled for screen readers. */
export function Sparkline(props: { values: readonly number[]; label: string }) {
  return (
    <svg class="sparkline" width={WIDTH} height={HEIGHT} viewBox={`0 -1 ${WIDTH} ${HEIGHT + 2}`} role="img" aria-label={props.label}>
      <polyline points={sparklinePoints(props.values, WIDTH, HEIGHT)} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}
