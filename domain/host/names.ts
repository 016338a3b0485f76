/**
 * Host names (custom domains, certificate names), one copy: the event schemas, the API and the
 * router's config rendering use these. Patterns are anchored; a RegExp of each for plain checks.
 */

/** One label of a host name: lower-case letters, digits and inner dashes, 1-63 characters. */
const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'

/** A host name: lower-case LDH labels, at least two, separated by dots, at most 253 characters. */
export const HOST_NAME_PATTERN = `^(?=.{1,253}$)${LABEL}(\\.${LABEL})+$`
export const HOST_NAME_RE = new RegExp(HOST_NAME_PATTERN)

/** A name a certificate is for: a host name, or a wildcard over its first label (`*.example.com`). */
export const CERT_HOST_NAME_PATTERN = `^(?=.{1,253}$)(\\*\\.)?${LABEL}(\\.${LABEL})+$`
