/**
 * Waiting that stops as soon as a run is stopped: an abortable sleep and a
 * race of any promise against an AbortSignal. Each service rejects with its
 * own abort error (GraphAbortError, FourMeAbortError, SicsError 'aborted'),
 * so the caller says which one; the default is an Error named AbortError.
 * Listeners are always removed, so long runs do not pile them up on a signal.
 */

/** Makes the error an aborted wait rejects with. */
export type AbortErrorOf = (signal: AbortSignal) => unknown;

/** An Error named AbortError (what `isAbort`-style checks look for). */
export function abortError(message = 'The operation was aborted'): Error {
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}

const defaultError: AbortErrorOf = () => abortError();

/** Waits `ms`, or rejects with `errorOf(signal)` as soon as `signal` aborts (at once when it already has). */
export function sleep(ms: number, signal?: AbortSignal, errorOf: AbortErrorOf = defaultError): Promise<void> {
  if (signal?.aborted) return Promise.reject(errorOf(signal));
  if (!(ms > 0)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(errorOf(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles like `p`, or rejects with `errorOf(signal)` as soon as `signal`
 * aborts (at once when it already has). `p` itself is not cancelled: the
 * caller stops waiting for it.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, errorOf: AbortErrorOf = defaultError): Promise<T> {
  if (signal.aborted) return Promise.reject(errorOf(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(errorOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
