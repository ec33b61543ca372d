/**
 * Proves that nodes/lib/graph/graph-schema.ts equals Microsoft's metadata as
 * extracted into test/fixtures/graph/ (v1.0 CSDL extract + beta notes; the
 * README there names the public source).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import * as schema from '../nodes/lib/graph/graph-schema';

function repoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = start;
    for (let k = 0; k < 8; k++) {
      if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'nodes', 'lib', 'graph', 'graph-schema.ts'))) return dir;
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return process.cwd();
}

/** The fixtures live in the repository (test/fixtures/graph/README.md names their public source). */
const refDir = process.env.INTUNE_GRAPH_REFERENCE_DIR ?? path.join(repoRoot(), 'test', 'fixtures', 'graph');

function load(name: string): any {
  const file = path.join(refDir, name);
  if (!fs.existsSync(file)) {
    throw new Error(`Graph reference file missing: ${file} (see test/fixtures/graph/README.md, or set INTUNE_GRAPH_REFERENCE_DIR).`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

describe('graph-schema matches the Graph reference metadata', () => {
  let v1: any;
  let beta: any;
  before(() => {
    v1 = load('intune-v1.0.json');
    beta = load('intune-beta-notes.json');
  });

  const props = (list: any[]) => list.map((p) => ({ name: p.name, type: p.type, nullable: p.nullable ?? true }));

  it('entity type properties (name, type, nullable) equal the v1.0 CSDL extract', () => {
    const entities = Object.keys(schema.V1_ENTITY_PROPERTIES);
    expect(entities).to.have.length(9);
    for (const e of entities) {
      expect(v1.entityTypes[e], `entity ${e} in reference`).to.exist;
      expect(schema.V1_ENTITY_PROPERTIES[e as schema.EntityName], e).to.deep.equal(props(v1.entityTypes[e].properties));
    }
    expect(schema.V1_ENTITY_PROPERTIES.managedDevice).to.have.length(v1.summary.managedDeviceProperties);
  });

  it('complex type properties equal the reference', () => {
    for (const c of Object.keys(schema.V1_COMPLEX_PROPERTIES)) {
      expect(schema.V1_COMPLEX_PROPERTIES[c as schema.ComplexName], c).to.deep.equal(props(v1.complexTypes[c].properties));
    }
  });

  it('beta-only managedDevice properties and the v1/beta counts agree', () => {
    expect(schema.MANAGED_DEVICE_BETA_ONLY).to.deep.equal(beta.managedDevice.betaOnlyProperties.map((p: any) => ({ name: p.name, typeInDocs: p.typeInDocs })));
    const v1Count = schema.entityPropertyNames('v1.0', 'managedDevice').size - 1; // without id
    const betaCount = schema.entityPropertyNames('beta', 'managedDevice').size - 1;
    expect(v1Count).to.equal(beta.managedDevice.v1PropertyCount);
    expect(betaCount).to.equal(beta.managedDevice.betaPropertyCount);
    for (const p of beta.managedDevice.betaOnlyProperties) {
      if (p.betaEnumMembers) expect(schema.BETA_PROPERTY_ENUMS[p.name], p.name).to.deep.equal(p.betaEnumMembers);
    }
    const withEnums = beta.managedDevice.betaOnlyProperties.filter((p: any) => p.betaEnumMembers).map((p: any) => p.name);
    expect(Object.keys(schema.BETA_PROPERTY_ENUMS)).to.deep.equal(withEnums);
  });

  it('beta-only properties of the other types equal the reference', () => {
    const expected: Record<string, string[]> = {};
    for (const [k, v] of Object.entries<any>(beta.otherTypesBetaVsV1.entityTypes)) if (v.betaOnlyProperties) expected[k] = v.betaOnlyProperties;
    for (const k of ['deviceCompliancePolicySettingState', 'configurationManagerClientEnabledFeatures']) {
      expected[k] = beta.otherTypesBetaVsV1.complexTypes[k].betaOnlyProperties;
    }
    expect(schema.BETA_ONLY_PROPERTIES).to.deep.equal(expected);
  });

  it('$filter operators and GET-by-id-only placeholders equal the hints parsed from the CSDL', () => {
    const hints = v1.managedDeviceQueryHints;
    expect(schema.MANAGED_DEVICE_FILTER_OPERATORS).to.deep.equal(hints.filterOperatorsByProperty);
    expect(schema.MANAGED_DEVICE_GET_BY_ID_ONLY).to.deep.equal(hints.getByIdWithSelectOnly);
    // and each agrees with the per-property derivedFromDescription
    for (const p of v1.entityTypes.managedDevice.properties) {
      const d = p.derivedFromDescription ?? {};
      expect(schema.filterOperatorsOf(p.name), p.name).to.deep.equal(d.filterOperators ?? []);
      expect(schema.isGetByIdOnly('v1.0', p.name), p.name).to.equal(Boolean(d.getByIdWithSelectOnly));
    }
  });

  it('enum members (name and value) equal the CSDL, beta-only members equal the notes', () => {
    for (const [name, members] of Object.entries(schema.V1_ENUMS)) {
      expect(members, name).to.deep.equal(v1.enumTypes[name].members.map((m: any) => ({ name: m.name, value: m.value })));
    }
    const betaMembers: Record<string, string[]> = {};
    for (const [k, v] of Object.entries<any>(beta.otherTypesBetaVsV1.enumTypes)) betaMembers[k] = v.betaOnlyMembers;
    expect(schema.BETA_ONLY_ENUM_MEMBERS).to.deep.equal(betaMembers);
    // the two spellings of non-compliant
    expect(schema.enumMembers('v1.0', 'complianceState')).to.include('noncompliant').and.include('inGracePeriod');
    expect(schema.enumMembers('v1.0', 'complianceStatus')).to.include('nonCompliant').and.not.include('noncompliant');
  });

  it('managedDevice actions, beta-only actions, derived policy types and report parameters equal the reference', () => {
    const actions: Record<string, unknown> = {};
    for (const a of v1.actions.managedDevice) actions[a.name] = a.parameters.map((p: any) => ({ name: p.name, type: p.type, nullable: p.nullable ?? true }));
    expect(schema.MANAGED_DEVICE_ACTIONS_V1).to.deep.equal(actions);
    expect(Object.keys(schema.MANAGED_DEVICE_ACTIONS_V1)).to.have.length(v1.summary.managedDeviceActions);
    const n = beta.betaOnlyActions.sendCustomNotificationToCompanyPortal;
    expect(schema.MANAGED_DEVICE_ACTIONS_BETA_ONLY.sendCustomNotificationToCompanyPortal.map((p) => [p.name, p.type])).to.deep.equal(
      n.parameters.map((p: any) => [p.name, p.type]),
    );
    expect(schema.COMPLIANCE_POLICY_DERIVED_TYPES).to.deep.equal(v1.entityTypes.deviceCompliancePolicy.derivedTypes.map((t: string) => t.replace('graph.', '')));
    const reports: Record<string, string[]> = {};
    for (const a of v1.actions.deviceManagementReports) reports[a.name] = a.parameters.map((p: any) => p.name);
    expect(schema.REPORT_ACTION_PARAMETERS).to.deep.equal(reports);
  });

  it('isSelectable / assertSelect separate v1.0 from beta and name the bad property', () => {
    expect(schema.isSelectable('v1.0', 'managedDevice', 'deviceName')).to.equal(true);
    expect(schema.isSelectable('v1.0', 'managedDevice', 'joinType')).to.equal(false);
    expect(schema.isSelectable('beta', 'managedDevice', 'joinType')).to.equal(true);
    expect(schema.isSelectable('v1.0', 'managedDevice', 'DeviceName')).to.equal(false);
    expect(schema.isSelectable('beta', 'deviceCompliancePolicyState', 'userPrincipalName')).to.equal(true);
    expect(schema.isSelectable('v1.0', 'deviceCompliancePolicyState', 'userPrincipalName')).to.equal(false);
    expect(() => schema.assertSelect('v1.0', 'managedDevice', ['id', 'deviceName', 'serialNumber'])).to.not.throw();
    expect(() => schema.assertSelect('v1.0', 'managedDevice', ['id', 'skuFamily'])).to.throw(schema.GraphSchemaError, /'skuFamily'.*beta/);
    expect(() => schema.assertSelect('beta', 'managedDevice', ['id', 'bogusProp'])).to.throw(/'bogusProp'/);
    try {
      schema.assertSelect('beta', 'managedDevice', ['bogusProp']);
    } catch (e) {
      expect((e as schema.GraphSchemaError).property).to.equal('bogusProp');
    }
  });

  it('placeholders and beta GET-by-id-only properties', () => {
    expect(schema.listPlaceholder('v1.0', 'physicalMemoryInBytes')).to.equal(0);
    expect(schema.listPlaceholder('v1.0', 'udid')).to.equal('');
    expect(schema.listPlaceholder('v1.0', 'notes')).to.equal(null);
    expect(schema.listPlaceholder('v1.0', 'deviceName')).to.equal(undefined);
    expect(schema.isGetByIdOnly('v1.0', 'hardwareInformation')).to.equal(false);
    expect(schema.isGetByIdOnly('beta', 'hardwareInformation')).to.equal(true);
    expect(schema.isGetByIdOnly('beta', 'bootstrapTokenEscrowed')).to.equal(true);
    for (const p of Object.keys(schema.MANAGED_DEVICE_BETA_GET_BY_ID_ONLY)) expect(schema.isSelectable('beta', 'managedDevice', p)).to.equal(true);
    expect(schema.managedDeviceActions('v1.0')).to.not.include('sendCustomNotificationToCompanyPortal');
    expect(schema.managedDeviceActions('beta')).to.include('sendCustomNotificationToCompanyPortal');
    expect(schema.enumValue('complianceStatus', 'nonCompliant')).to.equal(4);
  });
});
