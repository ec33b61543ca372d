/**
 * Every GraphQL document the Intune → 4me sink sends, in one place, so that
 * a test can parse and validate all of them against the schema subset
 * (../shared/reference/4me/schema.graphql).
 *
 * Rules the documents follow:
 * - filters travel as variables of the TOP-LEVEL filter types
 *   (PersonFilter, ConfigurationItemFilter, RequestFilter): the names of the
 *   nested value types (StringFilter, …) are not known for the live service;
 * - connections ask for at most 100 nodes and page with `after`;
 * - every mutation selects `errors { path message }`.
 */

export const OPS = {
  verify: /* GraphQL */ `
    query IntuneVerify {
      me { id name primaryEmail }
      account { id name }
    }`,

  peopleByEmail: /* GraphQL */ `
    query IntunePeopleByEmail($filter: PersonFilter, $after: String) {
      people(first: 100, view: all, filter: $filter, after: $after) {
        nodes { id primaryEmail disabled }
        pageInfo { hasNextPage endCursor }
      }
    }`,

  discoveredCis: /* GraphQL */ `
    mutation IntuneDiscoveredCis($input: DiscoveredConfigurationItemsInput!) {
      discoveredConfigurationItems(input: $input) {
        errors { path message }
        configurationItems { id sourceID }
        asyncQuery { id resultUrl errorCount resultCount status }
      }
    }`,

  softwareCategory: /* GraphQL */ `
    query IntuneSoftwareCategory($filter: ProductCategoryFilter) {
      productCategories(first: 1, filter: $filter) {
        nodes { id reference ruleSet disabled }
      }
    }`,

  cisBySource: /* GraphQL */ `
    query IntuneCisBySource($filter: ConfigurationItemFilter, $after: String) {
      configurationItems(first: 100, filter: $filter, after: $after) {
        nodes { id sourceID status }
        pageInfo { hasNextPage endCursor }
      }
    }`,

  requestsBySource: /* GraphQL */ `
    query IntuneRequestsBySource($filter: RequestFilter, $after: String) {
      requests(first: 100, filter: $filter, after: $after) {
        nodes { id requestId sourceID status }
        pageInfo { hasNextPage endCursor }
      }
    }`,

  requestCreate: /* GraphQL */ `
    mutation IntuneRequestCreate($input: RequestCreateInput!) {
      requestCreate(input: $input) {
        errors { path message }
        request { id requestId sourceID status }
      }
    }`,

  requestUpdate: /* GraphQL */ `
    mutation IntuneRequestUpdate($input: RequestUpdateInput!) {
      requestUpdate(input: $input) {
        errors { path message }
        request { id requestId status }
      }
    }`,

  noteCreate: /* GraphQL */ `
    mutation IntuneNoteCreate($input: NoteCreateInput!) {
      noteCreate(input: $input) {
        errors { path message }
        note { id }
      }
    }`,
} as const;

export type OperationName = keyof typeof OPS;

/** Largest number of `people` connections (100 addresses each) in one look-up request. */
export const PEOPLE_GROUPS_PER_REQUEST = 50;

/**
 * Person look-up of `groups` lists of up to 100 addresses in ONE request:
 * the `people` connection of OPS.peopleByEmail, `groups` times, aliased
 * p0…p{groups-1} with filters $f0…. One request instead of `groups`: the
 * hourly request budget and the burst window are spent on the CI uploads,
 * while the cost (nodes requested) stays the same. 4me's only bound on a
 * query is 500,000 nodes per request; 50 groups ask for 5,000.
 */
export function peopleByEmailGroups(groups: number): string {
  const n = Math.max(1, Math.min(PEOPLE_GROUPS_PER_REQUEST, Math.floor(groups)));
  const vars = Array.from({ length: n }, (_, i) => `$f${i}: PersonFilter`).join(', ');
  const fields = Array.from(
    { length: n },
    (_, i) => `
      p${i}: people(first: 100, view: all, filter: $f${i}) {
        nodes { id primaryEmail disabled }
        pageInfo { hasNextPage endCursor }
      }`,
  ).join('');
  return `
    query IntunePeopleByEmailGroups(${vars}) {${fields}
    }`;
}

/** A page of a connection as the documents above select it. */
export interface Connection<T> {
  nodes: Array<T | null> | null;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}
