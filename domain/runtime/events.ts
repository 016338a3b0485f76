import Type from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import { AppName, Port, ProcessType, Strict } from '../schema.js'

const Release = Type.Integer({ minimum: 1 })
/** A Docker container id (64 hex) or a short form of it. */
const ContainerId = Type.String({ minLength: 1, maxLength: 128 })
/** The slot of a process of one type: web.1, web.2, ... (Swarm's task slot). */
const Slot = Type.Integer({ minimum: 1, maximum: 1000 })

/**
 * Events of `runtime.<app>` streams: what runs. The scheduler writes the deploys, the publisher
 * (one per Docker host) the containers.
 */
export const runtimeEvents: EventDefinition[] = [
  {
    type: 'DeployStarted',
    version: 1,
    stream: 'runtime',
    description: 'The scheduler started rolling an app to a release (or to a new formation of it).',
    schema: Type.Object({ app: AppName, release: Release, formation: Type.Record(ProcessType, Type.Integer({ minimum: 0 })) }, Strict),
  },
  {
    type: 'DeployCompleted',
    version: 1,
    stream: 'runtime',
    description: "Every process of the app's formation runs the release.",
    schema: Type.Object({ app: AppName, release: Release }, Strict),
  },
  {
    type: 'DeployFailed',
    version: 1,
    stream: 'runtime',
    description: 'A deploy did not converge (containers never healthy, image missing, ...); the previous release keeps running.',
    schema: Type.Object({ app: AppName, release: Release, reason: Type.String({ minLength: 1, maxLength: 2048 }), rolledBackTo: Type.Optional(Release) }, Strict),
  },
  {
    type: 'ContainerStarted',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app is running and (web, with a port) accepts connections.',
    schema: Type.Object(
      { app: AppName, type: ProcessType, release: Release, container: ContainerId, host: Type.String(), port: Type.Optional(Port), number: Type.Optional(Slot) },
      Strict,
    ),
  },
  {
    type: 'ContainerStopping',
    version: 1,
    stream: 'runtime',
    description: 'A container is about to be stopped: routers stop sending it new requests (drain).',
    schema: Type.Object({ app: AppName, type: ProcessType, container: ContainerId }, Strict),
  },
  {
    type: 'ContainerStopped',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app stopped (asked to).',
    schema: Type.Object({ app: AppName, type: ProcessType, container: ContainerId }, Strict),
  },
  {
    type: 'ContainerCrashed',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app exited without being asked to (Swarm starts another).',
    schema: Type.Object({ app: AppName, type: ProcessType, container: ContainerId, exitCode: Type.Integer(), reason: Type.Optional(Type.String({ maxLength: 1024 })) }, Strict),
  },
]
