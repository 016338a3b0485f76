import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { AppName, ConfigKey, ConfigValue, Strict, UserName } from './schema.js'

/** Events of `app.<name>` streams. */
export const appEvents: EventDefinition[] = [
  {
    type: 'AppCreated',
    version: 1,
    stream: 'app',
    description: 'An app was created.',
    schema: Type.Object({ app: AppName, owner: UserName }, Strict),
  },
  {
    type: 'AppDestroyed',
    version: 1,
    stream: 'app',
    description: 'An app was destroyed.',
    schema: Type.Object({ app: AppName }, Strict),
  },
  {
    type: 'ConfigSet',
    version: 1,
    stream: 'app',
    description: 'Config values were set.',
    schema: Type.Object({ app: AppName, values: Type.Record(ConfigKey, ConfigValue) }, Strict),
  },
  {
    type: 'ConfigUnset',
    version: 1,
    stream: 'app',
    description: 'Config keys were removed.',
    schema: Type.Object({ app: AppName, keys: Type.Array(ConfigKey, { minItems: 1 }) }, Strict),
  },
]
