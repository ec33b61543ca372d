/**
 * The status dot of a source node (intune-devices, intune-compliance): the
 * last result when idle, the connection's health when it has something to
 * say (red for errors, yellow for warnings such as an expiring certificate),
 * a note when run state lives in a store that does not survive a restart,
 * and nothing after close. Texts are sent in the form the editor translates
 * into its own language (status-text.ts).
 */
import type { Node } from 'node-red';
import { healthPart, type HealthBoard } from './config-health';
import { shorten, type IntuneNodeStatus, type StatusMessage, type StatusTexts } from './status-text';
import { StatusDot } from './status-dot';

export class SourceStatus extends StatusDot {
  /** Appended to result texts when the state is in memory only. */
  readonly memoryNote: StatusMessage[];
  last: IntuneNodeStatus;

  constructor(
    node: Node,
    texts: StatusTexts,
    persistent: boolean,
    private readonly busy: () => boolean,
  ) {
    super(node, texts);
    this.memoryNote = persistent ? [] : [texts.msg('status.notPersistent', ' · state in memory only')];
    this.last = texts.status('grey', 'ring', texts.msg('status.idle', 'idle'), ...this.memoryNote);
  }

  /** Shows what an idle node should show (does nothing during a run). */
  idle(): void {
    if (this.busy()) return;
    const h = this.health;
    if (h && h.level !== 'ok') {
      const text = this.texts.msg('status.connection', 'connection: __text__', { text: healthPart(h) });
      this.show(this.texts.status(h.level === 'error' ? 'red' : 'yellow', 'ring', text));
    } else this.show(this.last);
  }

  /** Records a run's result and shows it. */
  result(s: IntuneNodeStatus): void {
    this.last = s;
    this.idle();
  }

  /** A configuration problem: red ring (its message, shortened, in the runtime's language) and an error in the log. */
  problem(err: Error): void {
    const m = err.message;
    this.show(this.texts.status('red', 'ring', shorten(m, 58)));
    this.node.error(`Not started: ${m}`);
  }

  /** Follows the connection's health; returns the function that stops following. */
  follow(board: HealthBoard): () => void {
    return this.watch(board, () => this.idle())!;
  }
}
