import Type from 'typebox'
import { APP_NAME, PROCESS_TYPE } from './app/names.js'
import { GIT_SHA_PATTERN } from './build/names.js'
import { USER_NAME_PATTERN } from './user/names.js'

/** Building blocks shared by the event schemas and, later, the API schemas. */

/** An app name: a DNS label, lower case, 1-30 characters (room for `wharf-<app>-<type>`). */
export const AppName = Type.String({ pattern: `^${APP_NAME}$`, minLength: 1, maxLength: 30 })
/** A user name: lower case letters, digits, `_` and `-`, 1-32 characters. */
export const UserName = Type.String({ pattern: USER_NAME_PATTERN })
/** A config key, as Heroku and Deis take them. */
export const ConfigKey = Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', maxLength: 128 })
/** A config value: at most 32 KiB. */
export const ConfigValue = Type.String({ maxLength: 32768 })
export const Sha = Type.String({ pattern: GIT_SHA_PATTERN })
export const Uuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })
export const ProcessType = Type.String({ pattern: `^${PROCESS_TYPE}$` })
export const Port = Type.Integer({ minimum: 1, maximum: 65535 })
export const Strict = { additionalProperties: false } as const
