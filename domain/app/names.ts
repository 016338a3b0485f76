/**
 * App names and process types, one copy each: the event schemas (domain/schema.ts), the API, the
 * router, the builder's git commands, the logger's syslog PROCID and the CLI's Procfile lines all
 * use these. Each is a pattern without anchors, to compose, and an anchored RegExp.
 */

/** An app name: a DNS label, lower case, no leading, trailing or double dash (its length, 1-30, is bounded apart). */
export const APP_NAME = '[a-z][a-z0-9]*(-[a-z0-9]+)*'
/** A whole string that is an app name (the pattern only: `AppName` also bounds the length). */
export const APP_NAME_RE = new RegExp(`^${APP_NAME}$`)

/** A process type (`web`, `worker`): lower case letters, digits, `_` and `-`, 1-30 characters. */
export const PROCESS_TYPE = '[a-z][a-z0-9_-]{0,29}'
/** A whole string that is a process type. */
export const PROCESS_TYPE_RE = new RegExp(`^${PROCESS_TYPE}$`)

/**
 * App names the platform keeps for itself: `<name>.<domain>` of each is, or may become, a host the
 * platform serves (`wharf.<domain>` is the controller's API), and `wharf-router-probe` is the label
 * of the router's probe host. `apps:create` refuses them with `WHARF_RESERVED`.
 */
export const RESERVED_APP_NAMES: ReadonlySet<string> = new Set([
  'wharf',
  'www',
  'api',
  'admin',
  'registry',
  'git',
  'ssh',
  'builder',
  'controller',
  'router',
  'logger',
  'logs',
  'syslog',
  'hooks',
  'webhooks',
  'store',
  's3',
  'nats',
  'status',
  'dashboard',
  'metrics',
  'localhost',
  'wharf-router-probe',
])

/** Whether `name` is an app name the platform keeps for itself ({@link RESERVED_APP_NAMES}, or any `wharf-...`). */
export function isReservedAppName(name: string): boolean {
  return RESERVED_APP_NAMES.has(name) || name.startsWith('wharf-')
}
