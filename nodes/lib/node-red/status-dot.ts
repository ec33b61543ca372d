/**
 * The status dot of one of our nodes: what every node does alike. Texts go
 * out in the form the editor translates into its own language
 * (status-text.ts); the connection's health is followed from its config
 * node's board; nothing is shown once the node closes (a late result would
 * otherwise paint the dot of a node that is gone).
 *
 * What a node shows when, and how health mixes in, is the node's own rule:
 * it keeps it and calls show() with the result (SourceStatus is the rule of
 * the source nodes).
 */
import type { Node } from 'node-red';
import type { Health, HealthBoard } from './config-health';
import { StatusText, type IntuneNodeStatus, type StatusPart, type StatusTexts } from './status-text';

export type DotFill = 'green' | 'yellow' | 'red' | 'grey' | 'blue';
export type DotShape = 'dot' | 'ring';

export class StatusDot {
  private closed = false;
  /** The connection's health, once watch() has been called (undefined before, or without a connection). */
  health: Health | undefined;

  constructor(
    protected readonly node: Node,
    readonly texts: StatusTexts,
  ) {}

  /** Shows a status (nothing after close). */
  show(s: IntuneNodeStatus): void {
    if (!this.closed) this.node.status(s);
  }

  /** Shows fill, shape and text (nothing after close). */
  paint(fill: DotFill, shape: DotShape, ...text: Array<StatusText | StatusPart>): void {
    this.show(this.texts.status(fill, shape, ...text));
  }

  /**
   * Follows a connection's health: `health` is kept current and `changed`
   * runs on every change (and at once). Returns the function that stops
   * following, for the close handler; undefined without a board.
   */
  watch(board: HealthBoard | undefined, changed: () => void): (() => void) | undefined {
    return board?.watch((h) => {
      this.health = h;
      changed();
    });
  }

  /** From now on nothing is shown. */
  close(): void {
    this.closed = true;
  }

  /** Empties the dot, also after close (the last step of a close handler that leaves no status behind). */
  clear(): void {
    this.node.status({});
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
