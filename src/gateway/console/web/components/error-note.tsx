import { ApiError } from '../api';

/** What went wrong with a request, said where the data would be (an alert: screen readers read it out). */
export function ErrorNote(props: { error: Error | undefined }) {
  const { error } = props;
  if (!error) return null;
  const detail = error instanceof ApiError ? `${error.status}${error.code ? ` ${error.code}` : ''}: ${error.message}` : error.message;
  return (
    <p class="error" role="alert">
      {detail}
    </p>
  );
}
