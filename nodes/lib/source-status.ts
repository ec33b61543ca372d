/**
 * The status dot of a source node (intune-devices, intune-compliance): the
 * last result when idle, the connection's health when it has something to
 * say (red for errors, yellow for warnings such as an expiring certificate),
 * a note when run state lives in a store that does not survive a restart,
 * and nothing after close.
 */
import type { Node, NodeStatus } from 'node-red';
import type { Health, HealthBoard } from './config-health';

export type Translate = (key: string, fallback: string, params?: Record<string, string | number>) => string;

export class SourceStatus {
  private closed = false;
  private health: Health | undefined;
  /** Appended to result texts when the state is in memory only. */
  readonly memoryNote: string;
  last: NodeStatus;

  constructor(
    private readonly node: Node,
    private readonly t: Translate,
    persistent: boolean,
    private readonly busy: () => boolean,
  ) {
    this.memoryNote = persistent ? '' : t('status.notPersistent', ' · state in memory only');
    this.last = { fill: 'grey', shape: 'ring', text: t('status.idle', 'idle') + this.memoryNote };
  }

  show(s: NodeStatus): void {
    if (!this.closed) this.node.status(s);
  }

  /** Shows what an idle node should show (does nothing during a run). */
  idle(): void {
    if (this.busy()) return;
    const h = this.health;
    if (h && h.level !== 'ok') {
      const text = this.t('status.connection', `connection: ${h.text}`, { text: h.text });
      this.show({ fill: h.level === 'error' ? 'red' : 'yellow', shape: 'ring', text });
    } else this.show(this.last);
  }

  /** Records a run's result and shows it. */
  result(s: NodeStatus): void {
    this.last = s;
    this.idle();
  }

  /** A configuration problem: red ring (shortened) and an error in the log. */
  problem(err: Error): void {
    const m = err.message;
    this.show({ fill: 'red', shape: 'ring', text: m.length > 60 ? `${m.slice(0, 57)}…` : m });
    this.node.error(`Not started: ${m}`);
  }

  /** Follows the connection's health; returns the function that stops following. */
  watch(board: HealthBoard): () => void {
    return board.watch((h) => {
      this.health = h;
      this.idle();
    });
  }

  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
