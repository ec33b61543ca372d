/**
 * The part of the Microsoft Graph contract (Intune) that the connector and the
 * simulated Graph both rely on, as plain data plus a few lookups.
 *
 * Every table below was derived from `test/fixtures/graph/` (the v1.0
 * CSDL extract and the beta notes); `test/graph-schema.test.ts` re-reads those
 * files and fails if any table drifts from them. Nothing here is guessed:
 * where Microsoft documents nothing (e.g. report columns) the source is named.
 *
 * Lookups:
 *   isSelectable(version, entity, prop)   may `prop` appear in $select?
 *   assertSelect(version, entity, props)  throws GraphSchemaError naming the first bad one
 *   entityPropertyNames(version, entity)  every structural property of that version
 *   filterOperatorsOf(prop)               $filter operators the CSDL allows for a managedDevice property
 *   isGetByIdOnly(version, prop) / listPlaceholder(version, prop)
 *   enumMembers(version, enumName)        member names (beta = v1.0 + beta-only)
 *   isBetaOnlyManagedDeviceProperty(prop)
 */

export type GraphVersion = 'v1.0' | 'beta';

export type EntityName =
  | 'managedDevice'
  | 'deviceCompliancePolicyState'
  | 'deviceCompliancePolicy'
  | 'deviceComplianceDeviceStatus'
  | 'deviceCompliancePolicySettingStateSummary'
  | 'deviceComplianceSettingState'
  | 'deviceManagementExportJob'
  | 'deviceCategory'
  | 'user';

export type ComplexName =
  | 'deviceCompliancePolicySettingState'
  | 'deviceActionResult'
  | 'settingSource'
  | 'configurationManagerClientEnabledFeatures';

export type EnumName =
  | 'complianceState'
  | 'complianceStatus'
  | 'managementState'
  | 'managedDeviceOwnerType'
  | 'managementAgentType'
  | 'deviceRegistrationState'
  | 'deviceEnrollmentType'
  | 'actionState'
  | 'policyPlatformType'
  | 'deviceManagementExchangeAccessState'
  | 'deviceManagementExchangeAccessStateReason'
  | 'managedDevicePartnerReportedHealthState'
  | 'settingSourceType'
  | 'deviceManagementReportStatus'
  | 'deviceManagementReportFileFormat'
  | 'deviceManagementExportJobLocalizationType';

export type FilterOperator = 'eq' | 'ne' | 'lt' | 'gt' | 'contains' | 'or';

export interface PropertyDef {
  name: string;
  /** CSDL type: Edm.*, graph.<type>, Collection(...). */
  type: string;
  nullable: boolean;
}

export interface EnumMember {
  name: string;
  value: number;
}

export interface ActionParameter {
  name: string;
  type: string;
  nullable: boolean;
}

/** v1.0 structural properties per entity type (from the v1.0 CSDL; `id` included). */
export const V1_ENTITY_PROPERTIES: Readonly<Record<EntityName, readonly PropertyDef[]>> = {
  managedDevice: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'activationLockBypassCode', type: 'Edm.String', nullable: true },
    { name: 'androidSecurityPatchLevel', type: 'Edm.String', nullable: true },
    { name: 'azureADDeviceId', type: 'Edm.String', nullable: true },
    { name: 'azureADRegistered', type: 'Edm.Boolean', nullable: true },
    { name: 'complianceGracePeriodExpirationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'complianceState', type: 'graph.complianceState', nullable: false },
    { name: 'configurationManagerClientEnabledFeatures', type: 'graph.configurationManagerClientEnabledFeatures', nullable: true },
    { name: 'deviceActionResults', type: 'Collection(graph.deviceActionResult)', nullable: true },
    { name: 'deviceCategoryDisplayName', type: 'Edm.String', nullable: true },
    { name: 'deviceEnrollmentType', type: 'graph.deviceEnrollmentType', nullable: false },
    { name: 'deviceHealthAttestationState', type: 'graph.deviceHealthAttestationState', nullable: true },
    { name: 'deviceName', type: 'Edm.String', nullable: true },
    { name: 'deviceRegistrationState', type: 'graph.deviceRegistrationState', nullable: false },
    { name: 'easActivated', type: 'Edm.Boolean', nullable: false },
    { name: 'easActivationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'easDeviceId', type: 'Edm.String', nullable: true },
    { name: 'emailAddress', type: 'Edm.String', nullable: true },
    { name: 'enrolledDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'enrollmentProfileName', type: 'Edm.String', nullable: true },
    { name: 'ethernetMacAddress', type: 'Edm.String', nullable: true },
    { name: 'exchangeAccessState', type: 'graph.deviceManagementExchangeAccessState', nullable: false },
    { name: 'exchangeAccessStateReason', type: 'graph.deviceManagementExchangeAccessStateReason', nullable: false },
    { name: 'exchangeLastSuccessfulSyncDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'freeStorageSpaceInBytes', type: 'Edm.Int64', nullable: false },
    { name: 'iccid', type: 'Edm.String', nullable: true },
    { name: 'imei', type: 'Edm.String', nullable: true },
    { name: 'isEncrypted', type: 'Edm.Boolean', nullable: false },
    { name: 'isSupervised', type: 'Edm.Boolean', nullable: false },
    { name: 'jailBroken', type: 'Edm.String', nullable: true },
    { name: 'lastSyncDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'managedDeviceName', type: 'Edm.String', nullable: true },
    { name: 'managedDeviceOwnerType', type: 'graph.managedDeviceOwnerType', nullable: false },
    { name: 'managementAgent', type: 'graph.managementAgentType', nullable: false },
    { name: 'managementCertificateExpirationDate', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'managementState', type: 'graph.managementState', nullable: false },
    { name: 'manufacturer', type: 'Edm.String', nullable: true },
    { name: 'meid', type: 'Edm.String', nullable: true },
    { name: 'model', type: 'Edm.String', nullable: true },
    { name: 'notes', type: 'Edm.String', nullable: true },
    { name: 'operatingSystem', type: 'Edm.String', nullable: true },
    { name: 'osVersion', type: 'Edm.String', nullable: true },
    { name: 'partnerReportedThreatState', type: 'graph.managedDevicePartnerReportedHealthState', nullable: false },
    { name: 'phoneNumber', type: 'Edm.String', nullable: true },
    { name: 'physicalMemoryInBytes', type: 'Edm.Int64', nullable: false },
    { name: 'remoteAssistanceSessionErrorDetails', type: 'Edm.String', nullable: true },
    { name: 'remoteAssistanceSessionUrl', type: 'Edm.String', nullable: true },
    { name: 'requireUserEnrollmentApproval', type: 'Edm.Boolean', nullable: true },
    { name: 'serialNumber', type: 'Edm.String', nullable: true },
    { name: 'subscriberCarrier', type: 'Edm.String', nullable: true },
    { name: 'totalStorageSpaceInBytes', type: 'Edm.Int64', nullable: false },
    { name: 'udid', type: 'Edm.String', nullable: true },
    { name: 'userDisplayName', type: 'Edm.String', nullable: true },
    { name: 'userId', type: 'Edm.String', nullable: true },
    { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
    { name: 'wiFiMacAddress', type: 'Edm.String', nullable: true },
  ],
  deviceCompliancePolicyState: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'displayName', type: 'Edm.String', nullable: true },
    { name: 'platformType', type: 'graph.policyPlatformType', nullable: false },
    { name: 'settingCount', type: 'Edm.Int32', nullable: false },
    { name: 'settingStates', type: 'Collection(graph.deviceCompliancePolicySettingState)', nullable: true },
    { name: 'state', type: 'graph.complianceStatus', nullable: false },
    { name: 'version', type: 'Edm.Int32', nullable: false },
  ],
  deviceCompliancePolicy: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'createdDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'description', type: 'Edm.String', nullable: true },
    { name: 'displayName', type: 'Edm.String', nullable: false },
    { name: 'lastModifiedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'version', type: 'Edm.Int32', nullable: false },
  ],
  deviceComplianceDeviceStatus: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'complianceGracePeriodExpirationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'deviceDisplayName', type: 'Edm.String', nullable: true },
    { name: 'deviceModel', type: 'Edm.String', nullable: true },
    { name: 'lastReportedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'status', type: 'graph.complianceStatus', nullable: false },
    { name: 'userName', type: 'Edm.String', nullable: true },
    { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
  ],
  deviceCompliancePolicySettingStateSummary: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'compliantDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'conflictDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'errorDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'nonCompliantDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'notApplicableDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'platformType', type: 'graph.policyPlatformType', nullable: false },
    { name: 'remediatedDeviceCount', type: 'Edm.Int32', nullable: false },
    { name: 'setting', type: 'Edm.String', nullable: true },
    { name: 'settingName', type: 'Edm.String', nullable: true },
    { name: 'unknownDeviceCount', type: 'Edm.Int32', nullable: false },
  ],
  deviceComplianceSettingState: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'complianceGracePeriodExpirationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'deviceId', type: 'Edm.String', nullable: true },
    { name: 'deviceModel', type: 'Edm.String', nullable: true },
    { name: 'deviceName', type: 'Edm.String', nullable: true },
    { name: 'setting', type: 'Edm.String', nullable: true },
    { name: 'settingName', type: 'Edm.String', nullable: true },
    { name: 'state', type: 'graph.complianceStatus', nullable: false },
    { name: 'userEmail', type: 'Edm.String', nullable: true },
    { name: 'userId', type: 'Edm.String', nullable: true },
    { name: 'userName', type: 'Edm.String', nullable: true },
    { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
  ],
  deviceManagementExportJob: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'expirationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'filter', type: 'Edm.String', nullable: true },
    { name: 'format', type: 'graph.deviceManagementReportFileFormat', nullable: false },
    { name: 'localizationType', type: 'graph.deviceManagementExportJobLocalizationType', nullable: false },
    { name: 'reportName', type: 'Edm.String', nullable: false },
    { name: 'requestDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'select', type: 'Collection(Edm.String)', nullable: true },
    { name: 'snapshotId', type: 'Edm.String', nullable: true },
    { name: 'status', type: 'graph.deviceManagementReportStatus', nullable: false },
    { name: 'url', type: 'Edm.String', nullable: true },
  ],
  deviceCategory: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'description', type: 'Edm.String', nullable: true },
    { name: 'displayName', type: 'Edm.String', nullable: true },
  ],
  user: [
    { name: 'id', type: 'Edm.String', nullable: false },
    { name: 'accountEnabled', type: 'Edm.Boolean', nullable: true },
    { name: 'displayName', type: 'Edm.String', nullable: true },
    { name: 'mail', type: 'Edm.String', nullable: true },
    { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
  ],
};

/** v1.0 complex types the connector reads. */
export const V1_COMPLEX_PROPERTIES: Readonly<Record<ComplexName, readonly PropertyDef[]>> = {
  deviceCompliancePolicySettingState: [
    { name: 'currentValue', type: 'Edm.String', nullable: true },
    { name: 'errorCode', type: 'Edm.Int64', nullable: false },
    { name: 'errorDescription', type: 'Edm.String', nullable: true },
    { name: 'instanceDisplayName', type: 'Edm.String', nullable: true },
    { name: 'setting', type: 'Edm.String', nullable: true },
    { name: 'settingName', type: 'Edm.String', nullable: true },
    { name: 'sources', type: 'Collection(graph.settingSource)', nullable: true },
    { name: 'state', type: 'graph.complianceStatus', nullable: false },
    { name: 'userEmail', type: 'Edm.String', nullable: true },
    { name: 'userId', type: 'Edm.String', nullable: true },
    { name: 'userName', type: 'Edm.String', nullable: true },
    { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
  ],
  deviceActionResult: [
    { name: 'actionName', type: 'Edm.String', nullable: true },
    { name: 'actionState', type: 'graph.actionState', nullable: false },
    { name: 'lastUpdatedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    { name: 'startDateTime', type: 'Edm.DateTimeOffset', nullable: false },
  ],
  settingSource: [
    { name: 'displayName', type: 'Edm.String', nullable: true },
    { name: 'id', type: 'Edm.String', nullable: true },
    { name: 'sourceType', type: 'graph.settingSourceType', nullable: false },
  ],
  configurationManagerClientEnabledFeatures: [
    { name: 'compliancePolicy', type: 'Edm.Boolean', nullable: false },
    { name: 'deviceConfiguration', type: 'Edm.Boolean', nullable: false },
    { name: 'inventory', type: 'Edm.Boolean', nullable: false },
    { name: 'modernApps', type: 'Edm.Boolean', nullable: false },
    { name: 'resourceAccess', type: 'Edm.Boolean', nullable: false },
    { name: 'windowsUpdateForBusiness', type: 'Edm.Boolean', nullable: false },
  ],
};

/** managedDevice properties that exist only on /beta (type as the beta docs page states it; null = undocumented). */
export const MANAGED_DEVICE_BETA_ONLY: readonly { name: string; typeInDocs: string | null }[] = [
  { name: 'aadRegistered', typeInDocs: 'Boolean' },
  { name: 'autopilotEnrolled', typeInDocs: 'Boolean' },
  { name: 'azureActiveDirectoryDeviceId', typeInDocs: 'String' },
  { name: 'bootstrapTokenEscrowed', typeInDocs: 'Boolean' },
  { name: 'chassisType', typeInDocs: 'chassisType' },
  { name: 'chromeOSDeviceInfo', typeInDocs: 'chromeOSDeviceProperty collection' },
  { name: 'cloudPcRemoteActionResults', typeInDocs: null },
  { name: 'configurationManagerClientHealthState', typeInDocs: 'configurationManagerClientHealthState' },
  { name: 'configurationManagerClientInformation', typeInDocs: 'configurationManagerClientInformation' },
  { name: 'deviceFirmwareConfigurationInterfaceManaged', typeInDocs: 'Boolean' },
  { name: 'deviceType', typeInDocs: 'deviceType' },
  { name: 'enrolledByUserPrincipalName', typeInDocs: null },
  { name: 'hardwareInformation', typeInDocs: 'hardwareInformation' },
  { name: 'joinType', typeInDocs: 'joinType' },
  { name: 'lostModeState', typeInDocs: 'lostModeState' },
  { name: 'managementFeatures', typeInDocs: 'managedDeviceManagementFeatures' },
  { name: 'ownerType', typeInDocs: 'ownerType' },
  { name: 'preferMdmOverGroupPolicyAppliedDateTime', typeInDocs: 'DateTimeOffset' },
  { name: 'processorArchitecture', typeInDocs: 'managedDeviceArchitecture' },
  { name: 'retireAfterDateTime', typeInDocs: 'DateTimeOffset' },
  { name: 'roleScopeTagIds', typeInDocs: 'String collection' },
  { name: 'securityPatchLevel', typeInDocs: null },
  { name: 'skuFamily', typeInDocs: 'String' },
  { name: 'skuNumber', typeInDocs: 'Int32' },
  { name: 'specificationVersion', typeInDocs: 'String' },
  { name: 'usersLoggedOn', typeInDocs: 'loggedOnUser collection' },
  { name: 'windowsActiveMalwareCount', typeInDocs: 'Int32' },
  { name: 'windowsRemediatedMalwareCount', typeInDocs: 'Int32' },
];

/** Beta-only property names of the other extracted entity types. */
export const BETA_ONLY_PROPERTIES: Readonly<Partial<Record<EntityName | ComplexName, readonly string[]>>> = {
  deviceCompliancePolicyState: ['userId', 'userPrincipalName'],
  deviceCompliancePolicy: ['roleScopeTagIds'],
  deviceComplianceDeviceStatus: ['platform'],
  deviceComplianceSettingState: ['platformType'],
  deviceManagementExportJob: ['search'],
  deviceCategory: ['roleScopeTagIds'],
  configurationManagerClientEnabledFeatures: ['endpointProtection', 'officeApps'],
  deviceCompliancePolicySettingState: ['settingInstanceId'],
};

/** `$filter` operators per managedDevice property, as each CSDL description lists them ('or' = may be or-ed with itself). */
export const MANAGED_DEVICE_FILTER_OPERATORS: Readonly<Record<string, readonly FilterOperator[]>> = {
  azureADDeviceId: ['eq'],
  complianceGracePeriodExpirationDateTime: ['lt', 'gt'],
  complianceState: ['eq', 'or'],
  deviceCategoryDisplayName: ['eq', 'or'],
  deviceName: ['eq', 'contains'],
  emailAddress: ['contains'],
  enrolledDateTime: ['lt', 'gt'],
  exchangeAccessState: ['eq', 'or'],
  imei: ['eq', 'or'],
  jailBroken: ['eq', 'or'],
  lastSyncDateTime: ['lt', 'gt'],
  managementAgent: ['eq', 'or'],
  managementState: ['eq', 'or'],
  manufacturer: ['eq', 'or'],
  model: ['eq', 'contains'],
  operatingSystem: ['eq', 'or'],
  osVersion: ['contains'],
  phoneNumber: ['contains'],
  serialNumber: ['eq', 'or'],
  userPrincipalName: ['eq', 'ne'],
};

/** v1.0 GET-by-id-only properties and the placeholder a LIST returns for each. */
export const MANAGED_DEVICE_GET_BY_ID_ONLY: Readonly<Record<string, null | '' | 0>> = {
  activationLockBypassCode: null,
  ethernetMacAddress: null,
  iccid: '',
  notes: null,
  physicalMemoryInBytes: 0,
  remoteAssistanceSessionUrl: '',
  udid: '',
};

/** Enum members (name → value) from the v1.0 CSDL. */
export const V1_ENUMS: Readonly<Record<EnumName, readonly EnumMember[]>> = {
  complianceState: [{ name: 'unknown', value: 0 }, { name: 'compliant', value: 1 }, { name: 'noncompliant', value: 2 }, { name: 'conflict', value: 3 }, { name: 'error', value: 4 }, { name: 'inGracePeriod', value: 254 }, { name: 'configManager', value: 255 }],
  complianceStatus: [{ name: 'unknown', value: 0 }, { name: 'notApplicable', value: 1 }, { name: 'compliant', value: 2 }, { name: 'remediated', value: 3 }, { name: 'nonCompliant', value: 4 }, { name: 'error', value: 5 }, { name: 'conflict', value: 6 }, { name: 'notAssigned', value: 7 }],
  managementState: [{ name: 'managed', value: 0 }, { name: 'retirePending', value: 1 }, { name: 'retireFailed', value: 2 }, { name: 'wipePending', value: 3 }, { name: 'wipeFailed', value: 4 }, { name: 'unhealthy', value: 5 }, { name: 'deletePending', value: 6 }, { name: 'retireIssued', value: 7 }, { name: 'wipeIssued', value: 8 }, { name: 'wipeCanceled', value: 9 }, { name: 'retireCanceled', value: 10 }, { name: 'discovered', value: 11 }, { name: 'unknownFutureValue', value: 12 }],
  managedDeviceOwnerType: [{ name: 'unknown', value: 0 }, { name: 'company', value: 1 }, { name: 'personal', value: 2 }, { name: 'unknownFutureValue', value: 3 }],
  managementAgentType: [{ name: 'eas', value: 1 }, { name: 'mdm', value: 2 }, { name: 'easMdm', value: 3 }, { name: 'intuneClient', value: 4 }, { name: 'easIntuneClient', value: 5 }, { name: 'configurationManagerClient', value: 8 }, { name: 'configurationManagerClientMdm', value: 10 }, { name: 'configurationManagerClientMdmEas', value: 11 }, { name: 'unknown', value: 16 }, { name: 'jamf', value: 32 }, { name: 'googleCloudDevicePolicyController', value: 64 }, { name: 'microsoft365ManagedMdm', value: 258 }, { name: 'msSense', value: 1024 }],
  deviceRegistrationState: [{ name: 'notRegistered', value: 0 }, { name: 'registered', value: 2 }, { name: 'revoked', value: 3 }, { name: 'keyConflict', value: 4 }, { name: 'approvalPending', value: 5 }, { name: 'certificateReset', value: 6 }, { name: 'notRegisteredPendingEnrollment', value: 7 }, { name: 'unknown', value: 8 }],
  deviceEnrollmentType: [{ name: 'unknown', value: 0 }, { name: 'userEnrollment', value: 1 }, { name: 'deviceEnrollmentManager', value: 2 }, { name: 'appleBulkWithUser', value: 3 }, { name: 'appleBulkWithoutUser', value: 4 }, { name: 'windowsAzureADJoin', value: 5 }, { name: 'windowsBulkUserless', value: 6 }, { name: 'windowsAutoEnrollment', value: 7 }, { name: 'windowsBulkAzureDomainJoin', value: 8 }, { name: 'windowsCoManagement', value: 9 }, { name: 'windowsAzureADJoinUsingDeviceAuth', value: 10 }, { name: 'appleUserEnrollment', value: 11 }, { name: 'appleUserEnrollmentWithServiceAccount', value: 12 }, { name: 'unknownFutureValue', value: 26 }],
  actionState: [{ name: 'none', value: 0 }, { name: 'pending', value: 1 }, { name: 'canceled', value: 2 }, { name: 'active', value: 3 }, { name: 'done', value: 4 }, { name: 'failed', value: 5 }, { name: 'notSupported', value: 6 }],
  policyPlatformType: [{ name: 'android', value: 0 }, { name: 'androidForWork', value: 1 }, { name: 'iOS', value: 2 }, { name: 'macOS', value: 3 }, { name: 'windowsPhone81', value: 4 }, { name: 'windows81AndLater', value: 5 }, { name: 'windows10AndLater', value: 6 }, { name: 'all', value: 100 }],
  deviceManagementExchangeAccessState: [{ name: 'none', value: 0 }, { name: 'unknown', value: 1 }, { name: 'allowed', value: 2 }, { name: 'blocked', value: 3 }, { name: 'quarantined', value: 4 }],
  deviceManagementExchangeAccessStateReason: [{ name: 'none', value: 0 }, { name: 'unknown', value: 1 }, { name: 'exchangeGlobalRule', value: 2 }, { name: 'exchangeIndividualRule', value: 3 }, { name: 'exchangeDeviceRule', value: 4 }, { name: 'exchangeUpgrade', value: 5 }, { name: 'exchangeMailboxPolicy', value: 6 }, { name: 'other', value: 7 }, { name: 'compliant', value: 8 }, { name: 'notCompliant', value: 9 }, { name: 'notEnrolled', value: 10 }, { name: 'unknownLocation', value: 12 }, { name: 'mfaRequired', value: 13 }, { name: 'azureADBlockDueToAccessPolicy', value: 14 }, { name: 'compromisedPassword', value: 15 }, { name: 'deviceNotKnownWithManagedApp', value: 16 }],
  managedDevicePartnerReportedHealthState: [{ name: 'unknown', value: 0 }, { name: 'activated', value: 1 }, { name: 'deactivated', value: 2 }, { name: 'secured', value: 3 }, { name: 'lowSeverity', value: 4 }, { name: 'mediumSeverity', value: 5 }, { name: 'highSeverity', value: 6 }, { name: 'unresponsive', value: 7 }, { name: 'compromised', value: 8 }, { name: 'misconfigured', value: 9 }],
  settingSourceType: [{ name: 'deviceConfiguration', value: 0 }, { name: 'deviceIntent', value: 1 }],
  deviceManagementReportStatus: [{ name: 'unknown', value: 0 }, { name: 'notStarted', value: 1 }, { name: 'inProgress', value: 2 }, { name: 'completed', value: 3 }, { name: 'failed', value: 4 }],
  deviceManagementReportFileFormat: [{ name: 'csv', value: 0 }, { name: 'pdf', value: 1 }, { name: 'json', value: 2 }, { name: 'unknownFutureValue', value: 3 }],
  deviceManagementExportJobLocalizationType: [{ name: 'localizedValuesAsAdditionalColumn', value: 0 }, { name: 'replaceLocalizableValues', value: 1 }],
};

/** Enum members that only /beta knows. */
export const BETA_ONLY_ENUM_MEMBERS: Readonly<Partial<Record<EnumName, readonly string[]>>> = {
  deviceEnrollmentType: ['androidAOSPUserOwnedDeviceEnrollment', 'androidAOSPUserlessDeviceEnrollment', 'androidEnterpriseCorporateWorkProfile', 'androidEnterpriseDedicatedDevice', 'androidEnterpriseFullyManaged', 'appleAccountDrivenUserEnrollment', 'azureAdJoinUsingAzureVmExtension'],
  managementAgentType: ['google', 'intuneAosp', 'unknownFutureValue'],
  policyPlatformType: ['androidAOSP', 'androidWorkProfile', 'windows10XProfile'],
};

/** Enums of beta-only managedDevice properties (member names from the beta docs page). */
export const BETA_PROPERTY_ENUMS: Readonly<Record<string, readonly string[]>> = {
  chassisType: ['desktop', 'enterpriseServer', 'laptop', 'mobileOther', 'mobileUnknown', 'phone', 'tablet', 'unknown', 'worksWorkstation'],
  deviceType: ['android', 'androidEnterprise', 'androidForWork', 'androidnGMS', 'blackberry', 'chromeOS', 'cloudPC', 'desktop', 'holoLens', 'iPad', 'iPhone', 'iPod', 'iSocConsumer', 'linux', 'mac', 'macMDM', 'nokia', 'palm', 'surfaceHub', 'tvOS', 'unix', 'unknown', 'visionOS', 'winCE', 'windows10x', 'windowsPhone', 'windowsRT', 'winEmbedded', 'winMO6'],
  joinType: ['azureADJoined', 'azureADRegistered', 'hybridAzureADJoined', 'unknown'],
  lostModeState: ['disabled', 'enabled'],
  managementFeatures: ['microsoftManagedDesktop', 'none'],
  ownerType: ['company', 'personal', 'unknown'],
  processorArchitecture: ['arm', 'arM64', 'unknown', 'x64', 'x86'],
};

/** The 18 v1.0 actions bound to managedDevice (all answer 204 No Content) with their parameters. */
export const MANAGED_DEVICE_ACTIONS_V1: Readonly<Record<string, readonly ActionParameter[]>> = {
  bypassActivationLock: [],
  cleanWindowsDevice: [{ name: 'keepUserData', type: 'Edm.Boolean', nullable: false }],
  deleteUserFromSharedAppleDevice: [{ name: 'userPrincipalName', type: 'Edm.String', nullable: true }],
  disableLostMode: [],
  locateDevice: [],
  logoutSharedAppleDeviceActiveUser: [],
  rebootNow: [],
  recoverPasscode: [],
  remoteLock: [],
  requestRemoteAssistance: [],
  resetPasscode: [],
  retire: [],
  shutDown: [],
  syncDevice: [],
  updateWindowsDeviceAccount: [{ name: 'updateWindowsDeviceAccountActionParameter', type: 'graph.updateWindowsDeviceAccountActionParameter', nullable: true }],
  windowsDefenderScan: [{ name: 'quickScan', type: 'Edm.Boolean', nullable: false }],
  windowsDefenderUpdateSignatures: [],
  wipe: [{ name: 'keepEnrollmentData', type: 'Edm.Boolean', nullable: true }, { name: 'keepUserData', type: 'Edm.Boolean', nullable: true }, { name: 'macOsUnlockCode', type: 'Edm.String', nullable: true }, { name: 'persistEsimDataPlan', type: 'Edm.Boolean', nullable: true }],
};

/** Actions bound to managedDevice that only /beta has. */
export const MANAGED_DEVICE_ACTIONS_BETA_ONLY: Readonly<Record<string, readonly ActionParameter[]>> = {
  sendCustomNotificationToCompanyPortal: [{ name: 'notificationTitle', type: 'String', nullable: true }, { name: 'notificationBody', type: 'String', nullable: true }],
};

/** Derived (concrete) compliance policy types; payloads carry '#microsoft.graph.<name>'. */
export const COMPLIANCE_POLICY_DERIVED_TYPES: readonly string[] = ['androidCompliancePolicy', 'androidWorkProfileCompliancePolicy', 'iosCompliancePolicy', 'macOSCompliancePolicy', 'windows10CompliancePolicy', 'windows10MobileCompliancePolicy', 'windows81CompliancePolicy', 'windowsPhone81CompliancePolicy'];

/** Parameters of the deviceManagementReports actions (getNoncompliantDevicesAndSettingsReport …). */
export const REPORT_ACTION_PARAMETERS: Readonly<Record<string, readonly string[]>> = {
  getCachedReport: ['id', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top'],
  getCompliancePolicyNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getCompliancePolicyNonComplianceSummaryReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getComplianceSettingNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getConfigurationPolicyNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getConfigurationPolicyNonComplianceSummaryReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getConfigurationSettingNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getDeviceManagementIntentPerSettingContributingProfiles: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getDeviceManagementIntentSettingsReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getDeviceNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getDevicesWithoutCompliancePolicyReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getHistoricalReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'filter'],
  getNoncompliantDevicesAndSettingsReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getPolicyNonComplianceMetadata: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getPolicyNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getPolicyNonComplianceSummaryReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getReportFilters: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  getSettingNonComplianceReport: ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'],
  retrieveDeviceAppInstallationStatusReport: ['name', 'select', 'search', 'groupBy', 'orderBy', 'skip', 'top', 'sessionId', 'filter'],
};

/**
 * beta GET-by-id-only managedDevice properties (beta docs: "default value in
 * LIST managedDevices; real value only from single-device GET … in $select")
 * and the placeholder the sim returns in lists.
 */
export const MANAGED_DEVICE_BETA_GET_BY_ID_ONLY: Readonly<Record<string, null | false>> = {
  hardwareInformation: null,
  bootstrapTokenEscrowed: false,
};

/**
 * Columns of the `NoncompliantDevicesAndSettings` report
 * (POST /deviceManagement/reports/getNoncompliantDevicesAndSettingsReport).
 * Source: MicrosoftDocs/memdocs reports-export-graph-available-reports.md
 * (DeviceId, DeviceName, ErrorCode, OS, OSVersion, PolicyName, SettingName,
 * SettingNm, SettingStatus, UPN); PolicyId is accepted in `filter` by the live
 * service, and the default output adds localized `_loc` siblings, which the
 * service refuses when they are named in `select`.
 * SettingStatus carries the numeric complianceStatus value (4 = nonCompliant).
 */
export const NONCOMPLIANT_REPORT_COLUMNS: readonly { column: string; propertyType: string; localized?: true; selectable: boolean }[] = [
  { column: 'DeviceId', propertyType: 'String', selectable: true },
  { column: 'DeviceName', propertyType: 'String', selectable: true },
  { column: 'UPN', propertyType: 'String', selectable: true },
  { column: 'OS', propertyType: 'String', selectable: true },
  { column: 'OSVersion', propertyType: 'String', selectable: true },
  { column: 'PolicyId', propertyType: 'String', selectable: true },
  { column: 'PolicyName', propertyType: 'String', selectable: true },
  { column: 'SettingName', propertyType: 'String', selectable: true },
  { column: 'SettingNm', propertyType: 'String', selectable: true },
  { column: 'SettingNm_loc', propertyType: 'String', localized: true, selectable: false },
  { column: 'SettingStatus', propertyType: 'Int32', selectable: true },
  { column: 'SettingStatus_loc', propertyType: 'String', localized: true, selectable: false },
  { column: 'ErrorCode', propertyType: 'Int64', selectable: true },
];

/** Columns the report accepts in `filter` (eq, combined with and). */
export const NONCOMPLIANT_REPORT_FILTER_COLUMNS: readonly string[] = ['DeviceId', 'PolicyId', 'OS'];

// ---------------------------------------------------------------------------
// Lookups

export class GraphSchemaError extends Error {
  constructor(
    message: string,
    readonly property: string,
  ) {
    super(message);
    this.name = 'GraphSchemaError';
  }
}

const nameCache = new Map<string, ReadonlySet<string>>();

/** Every structural property name of `entity` in `version` (beta = v1.0 + beta-only). */
export function entityPropertyNames(version: GraphVersion, entity: EntityName): ReadonlySet<string> {
  const key = `${version}|${entity}`;
  let set = nameCache.get(key);
  if (!set) {
    const names = new Set(V1_ENTITY_PROPERTIES[entity].map((p) => p.name));
    if (version === 'beta') {
      if (entity === 'managedDevice') for (const p of MANAGED_DEVICE_BETA_ONLY) names.add(p.name);
      for (const n of BETA_ONLY_PROPERTIES[entity] ?? []) names.add(n);
    }
    set = names;
    nameCache.set(key, set);
  }
  return set;
}

/** Is `prop` a property of `entity` that `$select` may name in `version`? Case-sensitive, like Graph's OData parser. */
export function isSelectable(version: GraphVersion, entity: EntityName, prop: string): boolean {
  return entityPropertyNames(version, entity).has(prop);
}

/** Throws a GraphSchemaError for the first property `$select` may not name; the message mirrors Graph's 400. */
export function assertSelect(version: GraphVersion, entity: EntityName, props: readonly string[]): void {
  for (const raw of props) {
    const prop = raw.trim();
    if (!isSelectable(version, entity, prop)) {
      const hint =
        version === 'v1.0' && entity === 'managedDevice' && isBetaOnlyManagedDeviceProperty(prop) ? ' (it exists only in beta)' : '';
      throw new GraphSchemaError(`Could not find a property named '${prop}' on type 'microsoft.graph.${entity}'.${hint}`, prop);
    }
  }
}

export function isBetaOnlyManagedDeviceProperty(prop: string): boolean {
  return MANAGED_DEVICE_BETA_ONLY.some((p) => p.name === prop);
}

/** `$filter` operators the CSDL description allows on a managedDevice property ([] = not filterable). */
export function filterOperatorsOf(prop: string): readonly FilterOperator[] {
  return Object.prototype.hasOwnProperty.call(MANAGED_DEVICE_FILTER_OPERATORS, prop) ? MANAGED_DEVICE_FILTER_OPERATORS[prop] : [];
}

export function isGetByIdOnly(version: GraphVersion, prop: string): boolean {
  if (Object.prototype.hasOwnProperty.call(MANAGED_DEVICE_GET_BY_ID_ONLY, prop)) return true;
  return version === 'beta' && Object.prototype.hasOwnProperty.call(MANAGED_DEVICE_BETA_GET_BY_ID_ONLY, prop);
}

/** The placeholder a LIST returns for a GET-by-id-only property (undefined for other properties). */
export function listPlaceholder(version: GraphVersion, prop: string): null | '' | 0 | false | undefined {
  if (Object.prototype.hasOwnProperty.call(MANAGED_DEVICE_GET_BY_ID_ONLY, prop)) return MANAGED_DEVICE_GET_BY_ID_ONLY[prop];
  if (version === 'beta' && Object.prototype.hasOwnProperty.call(MANAGED_DEVICE_BETA_GET_BY_ID_ONLY, prop)) {
    return MANAGED_DEVICE_BETA_GET_BY_ID_ONLY[prop];
  }
  return undefined;
}

/** Member names of an enum in `version`. */
export function enumMembers(version: GraphVersion, name: EnumName): readonly string[] {
  const v1 = V1_ENUMS[name].map((m) => m.name);
  return version === 'beta' ? [...v1, ...(BETA_ONLY_ENUM_MEMBERS[name] ?? []).filter((m) => !v1.includes(m))] : v1;
}

/** Numeric value of a v1.0 enum member (undefined when unknown). */
export function enumValue(name: EnumName, member: string): number | undefined {
  return V1_ENUMS[name].find((m) => m.name === member)?.value;
}

/** Every managedDevice action a version accepts as `POST .../managedDevices/{id}/<action>`. */
export function managedDeviceActions(version: GraphVersion): readonly string[] {
  const v1 = Object.keys(MANAGED_DEVICE_ACTIONS_V1);
  return version === 'beta' ? [...v1, ...Object.keys(MANAGED_DEVICE_ACTIONS_BETA_ONLY)] : v1;
}
