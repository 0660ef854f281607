import { useEffect } from 'preact/hooks';
import { Link } from './components/link';
import { Nav } from './components/nav';
import { BatchPage } from './pages/batch-page';
import { DeadLettersPage } from './pages/dead-letters-page';
import { InFlightPage } from './pages/inflight-page';
import { InvocationPage } from './pages/invocation-page';
import { QueuesPage } from './pages/queues-page';
import { useRoute } from './router';
import { paths, type Route } from './routes';

const TITLES: Readonly<Record<Route['page'], string>> = {
  queues: 'Queues',
  inflight: 'In flight',
  invocation: 'Invocation',
  deadLetters: 'Dead letters',
  batch: 'Batch',
  notFound: 'Not found',
};

/** The console: a header with the pages, and the current page. */
export function App() {
  const route = useRoute();
  useEffect(() => {
    document.title = `${TITLES[route.page]} · asyncfn`;
  }, [route.page]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Nav route={route} />
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

function Page(props: { route: Route }) {
  const { route } = props;
  switch (route.page) {
    case 'queues':
      return <QueuesPage />;
    case 'inflight':
      return <InFlightPage />;
    case 'invocation':
      return <InvocationPage key={route.callId} callId={route.callId} />;
    case 'deadLetters':
      return <DeadLettersPage />;
    case 'batch':
      return <BatchPage key={route.batchId} batchId={route.batchId} />;
    case 'notFound':
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No such page: try <Link href={paths.queues}>the queues</Link>.
          </p>
        </section>
      );
  }
}
