/**
 * Time scale, for benchmarks against simulated services ONLY.
 *
 * `INTUNE_CONNECTOR_TIME_SCALE=k` (in the environment of the Node-RED
 * process) shrinks the windows the clients pace in by k: Graph's 20 s
 * (graph-pacer, through intune-connection) and 4me's 2 s burst window
 * (fourme-client, through fourme-connection). The benchmark (bench/) shrinks
 * the simulated services' limit windows by the same k, so a run whose
 * duration is set by hourly budgets fits in minutes while every ratio to the
 * limits stays what it is. The hourly 4me budgets need nothing here: the
 * client waits for the reset time the service announces.
 *
 * Unset, empty or invalid: 1 (the real windows). Never set it against the
 * real services: the clients would send k times what their limits allow.
 */
export const TIME_SCALE_ENV = 'INTUNE_CONNECTOR_TIME_SCALE';

/** Largest accepted k (keeps the shrunk windows at 200 ms for Graph and 20 ms for 4me). */
export const MAX_TIME_SCALE = 100;

/** k from the environment: a number from 1 to MAX_TIME_SCALE, else 1. */
export function timeScale(env: Record<string, string | undefined> = process.env): number {
  const raw = env[TIME_SCALE_ENV];
  if (raw === undefined || raw.trim() === '') return 1;
  const k = Number(raw);
  return Number.isFinite(k) && k >= 1 && k <= MAX_TIME_SCALE ? k : 1;
}

/** The warning a connection logs once when k is not 1. */
export function timeScaleWarning(k: number): string {
  return `${TIME_SCALE_ENV}=${k}: pacing windows are shrunk ${k}-fold, for simulated services only — unset it for real tenants and accounts`;
}
