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
