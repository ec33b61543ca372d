/**
 * What a config node tells the nodes that use it: the shape other node
 * folders import (so that no node imports another node's folder).
 */
import { EventEmitter } from 'node:events';
import type { StatusPart } from './status-text';

export type HealthLevel = 'ok' | 'warn' | 'error';

export interface Health {
  level: HealthLevel;
  /** i18n key (namespace-qualified) for status text, and a plain English fallback for logs. */
  key: string;
  text: string;
  params?: Record<string, string | number>;
  /** `text` is a message of its own (an error's), shown as it is: the key only names its kind. */
  literal?: boolean;
}

/** Holds a config node's health and notifies subscribers when it changes. */
export class HealthBoard extends EventEmitter {
  private current: Health = { level: 'ok', key: '', text: '' };

  get health(): Health {
    return this.current;
  }

  set(h: Health): void {
    this.current = h;
    this.emit('change', h);
  }

  /** Subscribe; returns the function that unsubscribes (call it in the node's close handler). */
  watch(fn: (h: Health) => void): () => void {
    this.on('change', fn);
    fn(this.current);
    return () => this.off('change', fn);
  }
}

/** Node-RED's status dot for a health value. */
export function statusFor(h: Health, text: string): { fill: 'green' | 'yellow' | 'red'; shape: 'dot' | 'ring'; text: string } {
  return { fill: h.level === 'ok' ? 'green' : h.level === 'warn' ? 'yellow' : 'red', shape: h.level === 'ok' ? 'dot' : 'ring', text };
}

/**
 * The health as part of a status text: its message as it is (runtime
 * language) when it is a message of its own, else its key, which the editor
 * shows in its language.
 */
export function healthPart(h: Health): StatusPart {
  if (h.literal || !h.key) return h.text;
  return h.params ? { key: h.key, en: h.text, params: h.params } : { key: h.key, en: h.text };
}
