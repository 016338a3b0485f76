import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { AppName, Port, ProcessType, Strict } from '../schema.js'

const Release = Type.Integer({ minimum: 1 })
/** A Docker container id (64 hex) or a short form of it. */
const ContainerId = Type.String({ minLength: 1, maxLength: 128 })
/** The slot of a process of one type: web.1, web.2, ... (Swarm's task slot). */
const Slot = Type.Integer({ minimum: 1, maximum: 1000 })

export const DeployStartedSchema = Type.Object({ app: AppName, release: Release, formation: Type.Record(ProcessType, Type.Integer({ minimum: 0 })) }, Strict)
export type DeployStartedData = Static<typeof DeployStartedSchema>

export const DeployCompletedSchema = Type.Object({ app: AppName, release: Release }, Strict)
export type DeployCompletedData = Static<typeof DeployCompletedSchema>

export const DeployFailedSchema = Type.Object(
  { app: AppName, release: Release, reason: Type.String({ minLength: 1, maxLength: 2048 }), rolledBackTo: Type.Optional(Release) },
  Strict,
)
export type DeployFailedData = Static<typeof DeployFailedSchema>

export const ContainerStartedSchema = Type.Object(
  { app: AppName, type: ProcessType, release: Release, container: ContainerId, host: Type.String(), port: Type.Optional(Port), number: Type.Optional(Slot) },
  Strict,
)
export type ContainerStartedData = Static<typeof ContainerStartedSchema>

export const ContainerStoppingSchema = Type.Object({ app: AppName, type: ProcessType, container: ContainerId }, Strict)
export type ContainerStoppingData = Static<typeof ContainerStoppingSchema>

export const ContainerStoppedSchema = Type.Object({ app: AppName, type: ProcessType, container: ContainerId }, Strict)
export type ContainerStoppedData = Static<typeof ContainerStoppedSchema>

export const ContainerCrashedSchema = Type.Object(
  { app: AppName, type: ProcessType, container: ContainerId, exitCode: Type.Integer(), reason: Type.Optional(Type.String({ maxLength: 1024 })) },
  Strict,
)
export type ContainerCrashedData = Static<typeof ContainerCrashedSchema>

/** An event of a `runtime.<app>` stream as readers see it: the newest version of its type. */
export type RuntimeEvent =
  | RecordedEvent<'DeployStarted', DeployStartedData>
  | RecordedEvent<'DeployCompleted', DeployCompletedData>
  | RecordedEvent<'DeployFailed', DeployFailedData>
  | RecordedEvent<'ContainerStarted', ContainerStartedData>
  | RecordedEvent<'ContainerStopping', ContainerStoppingData>
  | RecordedEvent<'ContainerStopped', ContainerStoppedData>
  | RecordedEvent<'ContainerCrashed', ContainerCrashedData>

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
    schema: DeployStartedSchema,
  },
  {
    type: 'DeployCompleted',
    version: 1,
    stream: 'runtime',
    description: "Every process of the app's formation runs the release.",
    schema: DeployCompletedSchema,
  },
  {
    type: 'DeployFailed',
    version: 1,
    stream: 'runtime',
    description: 'A deploy did not converge (containers never healthy, image missing, ...); the previous release keeps running.',
    schema: DeployFailedSchema,
  },
  {
    type: 'ContainerStarted',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app is running and (web, with a port) accepts connections.',
    schema: ContainerStartedSchema,
  },
  {
    type: 'ContainerStopping',
    version: 1,
    stream: 'runtime',
    description: 'A container is about to be stopped: routers stop sending it new requests (drain).',
    schema: ContainerStoppingSchema,
  },
  {
    type: 'ContainerStopped',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app stopped (asked to).',
    schema: ContainerStoppedSchema,
  },
  {
    type: 'ContainerCrashed',
    version: 1,
    stream: 'runtime',
    description: 'A container of an app exited without being asked to (Swarm starts another).',
    schema: ContainerCrashedSchema,
  },
]
