import { useState } from 'preact/hooks';
import { navigate } from '../router';

/** A form asking for one id (a call id, a batch id) and going to its page. */
export function IdForm(props: { label: string; pathOf: (id: string) => string; initial?: string }) {
  const [value, setValue] = useState(props.initial ?? '');
  const onSubmit = (e: Event): void => {
    e.preventDefault();
    const id = value.trim();
    if (id !== '') navigate(props.pathOf(id));
  };
  return (
    <form class="inline" onSubmit={onSubmit}>
      <label>
        {props.label}
        <input name="id" value={value} onInput={(e) => setValue(e.currentTarget.value)} required spellcheck={false} autocomplete="off" />
      </label>
      <button type="submit">Show</button>
    </form>
  );
}
