import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type pg from 'pg'
import type { PlatformStore } from '../../core/backups.js'
import type { WharfConfig } from '../../core/config.js'
import type { ContainerEngine } from '../../core/engine/engine.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStores } from '../../core/objectstore/index.js'
import type { Catalogue, EventStore } from '../../events/index.js'
import type { LoggerClient } from '../../logs/index.js'

/** What the controller's routes work with. */
export interface ControllerDeps {
  cfg: WharfConfig
  log: Logger
  store: EventStore
  pool: pg.Pool
  catalogue: Catalogue
  /** The store (backups, event-log exports); undefined when no S3 endpoint is configured. */
  objects?: ObjectStores | undefined
  /** Backups of the read models and exports of the event log (the store service's, given by the composition root). */
  platform: PlatformStore
  /** The logger (over NATS) and the log stream: `wharf logs`. Without it the log routes answer 503. */
  logger?: LoggerClient
  /** The container engine (`wharf run`, `builds:create`); without it those answer 503. */
  engine?: ContainerEngine | undefined
}

/** The signed-in user of a request (set by the auth hook from `Authorization: Bearer <token>`). */
export interface AuthUser {
  username: string
  admin: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set for every route except the public ones (register, login, healthz, openapi). */
    user?: AuthUser
  }
  interface FastifyContextConfig {
    /** The route answers without a token. */
    public?: boolean
  }
}

/** The fastify instance routes are registered on: TypeBox schemas type the handlers. */
export type Api = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>

/** One file of routes (`routes/apps.ts`, ...): registers its routes under /v1. */
export type RoutePlugin = (api: Api, deps: ControllerDeps) => void | Promise<void>
