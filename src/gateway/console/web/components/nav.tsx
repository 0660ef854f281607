import type { Route } from '../routes';
import { paths } from '../routes';
import { Link } from './link';

const PAGES: ReadonlyArray<{ page: Route['page']; label: string; href: string }> = [
  { page: 'queues', label: 'Queues', href: paths.queues },
  { page: 'inflight', label: 'In flight', href: paths.inflight },
  { page: 'invocation', label: 'Invocation', href: paths.invocation() },
  { page: 'deadLetters', label: 'Dead letters', href: paths.deadLetters },
  { page: 'batch', label: 'Batches', href: paths.batch() },
];

/** The console's header: its name and one link per page, the current one marked. */
export function Nav(props: { route: Route }) {
  return (
    <header>
      <span class="brand">asyncfn</span>
      <nav aria-label="Console pages">
        <ul>
          {PAGES.map((p) => (
            <li key={p.page}>
              <Link href={p.href} current={p.page === props.route.page}>
                {p.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
    </header>
  );
}
