/** What nodes that use an `intune-config` may rely on (imported by node folders, never the other way). */
import type { Node } from 'node-red';
import type { HealthBoard } from '../node-red/config-health';
import type { ConnectionSecrets, IntuneConnection } from './intune-connection';

export interface IntuneConfigCredentials extends ConnectionSecrets {
  pfxName?: string;
  /** File names of an uploaded PEM certificate and key, shown in the editor. */
  certificateName?: string;
  privateKeyName?: string;
}

export interface IntuneConfigNode extends Node<IntuneConfigCredentials> {
  /** Health for the status dots of the nodes that use this config. */
  board: HealthBoard;
  /** The live connection; throws the configuration problem in plain words when there is none. */
  connection(): IntuneConnection;
}
