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

/** A page of a connection as the documents above select it. */
export interface Connection<T> {
  nodes: Array<T | null> | null;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}
