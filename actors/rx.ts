/**
 * The RxJS this project uses, each piece from its own module.
 *
 * `import … from 'rxjs'` loads RxJS's CommonJS index: 223 modules (every operator, scheduler and
 * observable creator), about 6 MiB of RSS in a process that uses twenty of them. RxJS 7 exports
 * its modules one by one (`rxjs/internal/*` in its package.json `exports`); these are the same
 * modules the index re-exports, so an Observable made here is the one made anywhere else. The
 * paths are RxJS 7's layout: a new major may move them, and this file is the one place to change.
 * Tests may use the index (`rxjs`, `rxjs/testing`).
 */
export { asapScheduler } from 'rxjs/internal/scheduler/asap';
export { asyncScheduler } from 'rxjs/internal/scheduler/async';
export { BehaviorSubject } from 'rxjs/internal/BehaviorSubject';
export { EMPTY } from 'rxjs/internal/observable/empty';
export { firstValueFrom } from 'rxjs/internal/firstValueFrom';
export { interval } from 'rxjs/internal/observable/interval';
export { NEVER } from 'rxjs/internal/observable/never';
export { Observable } from 'rxjs/internal/Observable';
export { race } from 'rxjs/internal/observable/race';
export { Subject } from 'rxjs/internal/Subject';
export { Subscription } from 'rxjs/internal/Subscription';
export { throwError } from 'rxjs/internal/observable/throwError';
export { timer } from 'rxjs/internal/observable/timer';
export { catchError } from 'rxjs/internal/operators/catchError';
export { debounceTime } from 'rxjs/internal/operators/debounceTime';
export { filter } from 'rxjs/internal/operators/filter';
export { finalize } from 'rxjs/internal/operators/finalize';
export { map } from 'rxjs/internal/operators/map';
export { take } from 'rxjs/internal/operators/take';
export { tap } from 'rxjs/internal/operators/tap';
export type { SchedulerLike } from 'rxjs/internal/types';
