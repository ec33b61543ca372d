/**
 * The nodes whose editor side the browser suite checks in both languages
 * (editor-catalogue.test.ts): palette entry, icon, port labels, dialog texts
 * against the catalogs, help in the info sidebar, a screenshot of the dialog.
 *
 * Adding a node to the suite is one entry here (plus, for its own behaviour,
 * one small test file like intune-action.test.ts):
 *
 *   { type: 'intune-compliance', palette: 'Intune' },
 *   { type: 'intune-4me-config', via: { type: 'intune-4me', prop: 'fourme' } },
 */
export interface NodeUnderTest {
  type: string;
  /** Palette category of a flow node. */
  palette?: string;
  /** A config node: opened through the "+" button of this flow node's property. */
  via?: { type: string; prop: string };
}

export const NODES_UNDER_TEST: NodeUnderTest[] = [
  { type: 'intune-config', via: { type: 'intune-devices', prop: 'intune' } },
  { type: 'intune-devices', palette: 'Intune' },
  { type: 'intune-action', palette: 'Intune' },
  { type: 'intune-compliance', palette: 'Intune' },
  { type: 'intune-4me', palette: 'Intune' },
  { type: 'intune-4me-config', via: { type: 'intune-4me', prop: 'fourme' } },
  { type: 'intune-acmp', palette: 'Intune' },
  { type: 'intune-acmp-actions', palette: 'Intune' },
  { type: 'intune-acmp-config', via: { type: 'intune-acmp', prop: 'acmp' } },
];

/** The module name the package's icons are served under (/icons/<module>/<file>). */
export const MODULE = '@intune-connector/node-red-intune';
