/**
 * The typed edge to Node-RED's runtime API: registering a node type, looking
 * up a config node, the node's context and the runtime's context stores,
 * and handing our own message shapes to send(). The @types/node-red
 * declarations differ from what the runtime does in a few places (context
 * callbacks, settings without a type for `contextStorage`, messages as one
 * fixed shape); the casts that bridge them are made here, once, instead of
 * in every node file.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import type { ContextLike, ContextStorageSetting } from './context-state';

/** What `credentials` in registerType() says for each secret: 'password' ones never go back to the editor. */
export type CredentialTypes<C> = { [K in keyof C]-?: { type: 'text' | 'password' } };

/** The credentials type of a node type (`Node<C>`). */
type CredentialsOf<N> = N extends Node<infer C> ? C : never;

/** A value the runtime hands to the editor as RED.settings.<name> (registerType's `settings`). */
export type NodeSettingValues = Record<string, { value: unknown; exportable?: boolean }>;

/**
 * Registers a node type. `ctor` is the node's constructor with its own node
 * and definition types (a config node's `this` carries its API; `def` the
 * node's properties).
 */
export function registerNode<TNode extends Node<object>, TDef extends NodeDef>(
  RED: NodeAPI,
  type: string,
  ctor: (this: TNode, def: TDef) => void,
  opts?: { credentials?: CredentialTypes<CredentialsOf<TNode>>; settings?: NodeSettingValues },
): void {
  RED.nodes.registerType(type, ctor as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], opts as Parameters<NodeAPI['nodes']['registerType']>[2]);
}

/** The deployed config node with this id, as its own type; null when the id is empty or nothing with it is deployed. */
export function configNode<T extends Node<object>>(RED: NodeAPI, id: unknown): T | null {
  return typeof id === 'string' && id ? ((RED.nodes.getNode(id) as unknown as T | null) ?? null) : null;
}

/** A node definition as the plain record the settings parsers read. */
export function defRecord(def: NodeDef): Record<string, unknown> {
  return def as unknown as Record<string, unknown>;
}

/** The runtime's `contextStorage` setting (undefined when there is none, or the settings cannot be read). */
export function contextStorageOf(RED: NodeAPI): ContextStorageSetting | undefined {
  try {
    return (RED.settings as unknown as { contextStorage?: ContextStorageSetting }).contextStorage;
  } catch {
    return undefined;
  }
}

/** The node's own context, and its flow's, in the asynchronous form context-state.ts uses. */
export function contextOf(node: Node<object>): ContextLike & { flow: ContextLike } {
  return node.context() as unknown as ContextLike & { flow: ContextLike };
}

/** One of our message shapes as what send() and error() take (Node-RED types messages as one fixed shape). */
export function asMessage(msg: object): NodeMessage {
  return msg as unknown as NodeMessage;
}
