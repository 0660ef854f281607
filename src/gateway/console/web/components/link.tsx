import type { ComponentChildren } from 'preact';
import { navigate } from '../router';

/** An in-console link: a real `<a href>` (open in a new tab works), followed without a reload. */
export function Link(props: { href: string; children: ComponentChildren; current?: boolean; class?: string }) {
  const onClick = (e: MouseEvent): void => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} onClick={onClick} aria-current={props.current ? 'page' : undefined} class={props.class}>
      {props.children}
    </a>
  );
}
