import Type from 'typebox'

/** Building blocks shared by the event schemas and, later, the API schemas. */

/** An app name: a DNS label, lower case, 1-30 characters (room for `wharf-<app>-<type>`). */
export const AppName = Type.String({ pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$', minLength: 1, maxLength: 30 })
/** A user name: lower case letters, digits, `_` and `-`, 1-32 characters. */
export const UserName = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' })
/** A config key, as Heroku and Deis take them. */
export const ConfigKey = Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', maxLength: 128 })
/** A config value: at most 32 KiB. */
export const ConfigValue = Type.String({ maxLength: 32768 })
export const Sha = Type.String({ pattern: '^[0-9a-f]{40}$' })
export const Uuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })
export const ProcessType = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,29}$' })
export const Port = Type.Integer({ minimum: 1, maximum: 65535 })
export const Strict = { additionalProperties: false } as const
