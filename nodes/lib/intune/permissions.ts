/**
 * Graph application permissions the connector uses, by feature. The 4me and
 * ACMP seeds both ask admins to grant these to the app registration.
 */
export interface FeatureNeed {
  feature: string;
  /** Any one of these roles is enough. */
  anyOf: string[];
  required: boolean;
}

/**
 * "Discovered apps": creating a report export job takes one of these (docs/graph-software.md);
 * no Read.All permission can. The first is the narrowest (Intune apps only), the one we name.
 */
export const DISCOVERED_APPS_ROLES: readonly string[] = ['DeviceManagementApps.ReadWrite.All', 'DeviceManagementConfiguration.ReadWrite.All', 'DeviceManagementManagedDevices.ReadWrite.All'];

export const PERMISSION_NEEDS: FeatureNeed[] = [
  { feature: 'devices', anyOf: ['DeviceManagementManagedDevices.Read.All', 'DeviceManagementManagedDevices.ReadWrite.All'], required: true },
  { feature: 'compliance', anyOf: ['DeviceManagementConfiguration.Read.All', 'DeviceManagementConfiguration.ReadWrite.All'], required: false },
  { feature: 'actions', anyOf: ['DeviceManagementManagedDevices.ReadWrite.All'], required: false },
  { feature: 'privilegedActions', anyOf: ['DeviceManagementManagedDevices.PrivilegedOperations.All'], required: false },
  { feature: 'users', anyOf: ['User.Read.All', 'Directory.Read.All'], required: false },
  { feature: 'discoveredApps', anyOf: [...DISCOVERED_APPS_ROLES], required: false },
];

export interface PermissionCheck {
  missingRequired: string[];
  missingOptional: string[];
  featuresLimited: string[];
}

export function checkPermissions(roles: readonly string[]): PermissionCheck {
  const have = new Set(roles);
  const out: PermissionCheck = { missingRequired: [], missingOptional: [], featuresLimited: [] };
  for (const need of PERMISSION_NEEDS) {
    if (need.anyOf.some((r) => have.has(r))) continue;
    (need.required ? out.missingRequired : out.missingOptional).push(need.anyOf[0]);
    if (!need.required) out.featuresLimited.push(need.feature);
  }
  return out;
}
