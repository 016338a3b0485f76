import Type from 'typebox'
import type { EventDefinition } from './catalogue.js'
import { AppName, Port, ProcessType, Strict } from './schema.js'

/** Events of `runtime.<app>` streams. */
export const runtimeEvents: EventDefinition[] = [
  {
    type: 'ContainerStarted',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app is running and accepts connections.',
    schema: Type.Object(
      { app: AppName, type: ProcessType, release: Type.Integer({ minimum: 1 }), container: Type.String(), host: Type.String(), port: Port },
      Strict,
    ),
  },
  {
    type: 'ContainerStopped',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app stopped.',
    schema: Type.Object({ app: AppName, type: ProcessType, container: Type.String() }, Strict),
  },
]
