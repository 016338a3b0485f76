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

/** The host of the router's probe server (it answers the config generation), never an app's. */
export const ROUTER_PROBE_HOST = 'wharf-router-probe.invalid'

/**
 * Why `domain` cannot be an app's custom domain on a platform under `platformDomain`, or undefined
 * when it can: the platform domain itself and every name under it are the platform's (the controller's
 * `wharf.<domain>`, each app's `<app>.<domain>`: a custom domain there would take another app's or the
 * API's host), and so are the router's probe host, `localhost` and the `.invalid`, `.localhost` and
 * `.local` names no one may own.
 */
export function reservedDomainReason(domain: string, platformDomain: string): string | undefined {
  const d = domain.toLowerCase().replace(/\.$/, '')
  const p = platformDomain.toLowerCase().replace(/\.$/, '')
  if (d === `wharf.${p}`) return `${d} is the platform's API`
  if (d === p) return `${d} is the platform's own domain`
  if (d.endsWith(`.${p}`)) return `names under ${p} are the platform's (each app answers on <app>.${p} already)`
  if (d === ROUTER_PROBE_HOST) return `${d} is the router's probe`
  if (d === 'localhost' || /\.(localhost|invalid|local)$/.test(d)) return `${d} is a special-use name no app may own`
  return undefined
}
