import Type from 'typebox'
import { includedSeq, type BackupManifest, type ExportManifest } from '../../../core/backups.js'
import { WharfError } from '../../../core/errors.js'
import { checkImportToken, consumeImportToken } from '../../../core/import-token.js'
import { StoreObjectId } from '../../../domain/index.js'
import { getReplay, startReplay, wharfProjections, type ReplayJob } from '../../../projections/index.js'
import { ErrorBody } from '../accounts/schemas.js'
import { consumersOfHost } from '../admin/consumers.js'
import { platformStatus } from '../admin/status.js'
import { tokenAuthenticator } from '../auth.js'
import { bearerToken } from '../http.js'
import type { AuthUser, RoutePlugin } from '../context.js'

function requireAdmin(user: AuthUser | undefined): AuthUser {
  if (!user?.admin) throw new WharfError('WHARF_FORBIDDEN', 'only an admin may do this')
  return user
}

const Part = Type.Object({
  part: Type.String(),
  up: Type.Boolean(),
  address: Type.String(),
  version: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
})

const Host = Type.Object({
  id: Type.String(),
  hostname: Type.String(),
  role: Type.String(),
  state: Type.String(),
  availability: Type.String(),
  address: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  leader: Type.Boolean(),
  engineVersion: Type.Optional(Type.String()),
})

const ConsumerRow = Type.Object({
  name: Type.String(),
  state: Type.Union([Type.Literal('running'), Type.Literal('reconnecting'), Type.Literal('stopped')]),
  error: Type.Optional(Type.String()),
  position: Type.Optional(Type.Integer()),
  lag: Type.Optional(Type.Integer()),
  sinceProgressS: Type.Number(),
  behindS: Type.Optional(Type.Number()),
  reconnects: Type.Integer(),
})

/** The consumers of the log and of Postgres in the controller's process and in the router's and the workers' of this host, and the verdict on them. */
const Consumers = Type.Object({
  ok: Type.Boolean(),
  reason: Type.Optional(Type.String()),
  head: Type.Optional(Type.Integer()),
  consumers: Type.Array(ConsumerRow),
})

const Backup = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  trigger: Type.String(),
  actor: Type.String(),
  bytes: Type.Integer(),
  sha256: Type.String(),
  /** Every read model in the backup includes the log up to this seq. */
  seq: Type.Integer(),
  tookMs: Type.Integer(),
  tool: Type.String(),
})

const Export = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  actor: Type.String(),
  namespace: Type.String(),
  events: Type.Integer(),
  bytes: Type.Integer(),
  sha256: Type.String(),
  tookMs: Type.Integer(),
})

function backupView(m: BackupManifest) {
  return {
    id: m.id,
    createdAt: m.createdAt,
    trigger: m.trigger,
    actor: m.actor,
    bytes: m.dump.bytes,
    sha256: m.dump.sha256,
    seq: includedSeq(m),
    tookMs: m.tookMs,
    tool: m.dump.tool,
  }
}

function exportView(m: ExportManifest) {
  return {
    id: m.id,
    createdAt: m.createdAt,
    actor: m.actor,
    namespace: m.namespace,
    events: m.events,
    bytes: m.ndjson.bytes,
    sha256: m.ndjson.sha256,
    tookMs: m.tookMs,
  }
}

const Json = Type.Record(Type.String(), Type.Unknown())
const RowDiff = Type.Object({
  table: Type.String(),
  kind: Type.Union([Type.Literal('only-live'), Type.Literal('only-rebuilt'), Type.Literal('differs')]),
  key: Json,
  live: Type.Optional(Json),
  rebuilt: Type.Optional(Json),
})
const Replay = Type.Object({
  id: Type.String(),
  actor: Type.String(),
  projection: Type.Union([Type.String(), Type.Null()]),
  verify: Type.Boolean(),
  status: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  phase: Type.Union([Type.Literal('replaying'), Type.Literal('indexing'), Type.Literal('comparing'), Type.Literal('swapping'), Type.Literal('done')]),
  progress: Type.Union([
    Type.Object({
      seq: Type.Integer(),
      total: Type.Integer(),
      events: Type.Integer(),
      eventsPerSec: Type.Integer(),
      etaSeconds: Type.Union([Type.Integer(), Type.Null()]),
    }),
    Type.Null(),
  ]),
  result: Type.Union([
    Type.Object({
      seq: Type.Integer(),
      events: Type.Integer(),
      tookMs: Type.Integer(),
      eventsPerSec: Type.Integer(),
      models: Type.Optional(
        Type.Array(
          Type.Object({
            projection: Type.String(),
            seq: Type.Integer(),
            identical: Type.Boolean(),
            differing: Type.Integer(),
            rows: Type.Array(RowDiff),
            problem: Type.Optional(Type.String()),
          }),
        ),
      ),
      swapped: Type.Optional(Type.Array(Type.String())),
    }),
    Type.Null(),
  ]),
  error: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
})
const ReplayParams = Type.Object({ id: Type.String({ pattern: '^rp_[a-z0-9]{1,40}$' }) }, { additionalProperties: false })

const IdParams = Type.Object({ id: StoreObjectId }, { additionalProperties: false })
/** Another platform's exports are under its namespace. */
const Namespace = Type.String({ pattern: '^[a-z][a-z0-9_]{0,40}$' })

/**
 * /v1/admin: the platform's parts, backups of the read models and exports of the event log (admin
 * only). Importing an export is the one exception: an admin, or on a new platform (no users yet) the
 * one-time import token `make up` printed; and only from this platform's namespace or one that
 * `WHARF_IMPORT_FROM` names.
 */
export const adminRoutes: RoutePlugin = (api, deps) => {
  const ctxOf = (user: AuthUser, correlationId: string) => ({ actor: `user:${user.username}`, correlationId })
  const authenticate = tokenAuthenticator(deps)
  // A replay started here runs in this process: stopping the controller stops it between batches.
  const stopReplay = new AbortController()
  let replaying: Promise<void> | undefined
  api.addHook('onClose', async () => {
    stopReplay.abort()
    await replaying
  })

  api.post(
    '/admin/replays',
    {
      schema: {
        summary:
          'Rebuild every read model (or one) from the first event: swap the rebuilt tables in, or with verify compare them row by row with the live ones (admin only; one at a time)',
        tags: ['admin'],
        body: Type.Object(
          { projection: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,49}$' })), verify: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 202: Replay, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const user = requireAdmin(req.user)
      let ended!: () => void
      const done = new Promise<void>((resolve) => (ended = resolve))
      const job: ReplayJob = await startReplay({
        store: deps.store,
        pool: deps.pool,
        projections: wharfProjections(),
        actor: `user:${user.username}`,
        projection: req.body.projection,
        verify: req.body.verify === true,
        signal: stopReplay.signal,
        onEnd: (j) => {
          deps.log.info({ replay: j.id, status: j.status, error: j.error, result: j.result && { ...j.result, models: undefined } }, 'replay ended')
          ended()
        },
      })
      replaying = done
      deps.log.info({ replay: job.id, actor: job.actor, projection: job.projection, verify: job.verify }, 'replay started')
      return reply.status(202).send(job)
    },
  )

  api.get(
    '/admin/replays/:id',
    {
      schema: {
        summary: 'A replay: its phase and progress while it runs, what it found or swapped when done (admin only)',
        tags: ['admin'],
        params: ReplayParams,
        response: { 200: Replay, '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      const job = await getReplay(deps.pool, req.params.id)
      if (!job) throw new WharfError('WHARF_NOT_FOUND', `no replay ${req.params.id}`)
      return job
    },
  )

  api.get(
    '/admin/status',
    {
      schema: {
        summary: 'Each real part as up or down, with its address and version, and each consumer with its state and lag (admin only)',
        tags: ['admin'],
        response: { 200: Type.Object({ parts: Type.Array(Part), consumers: Consumers }), '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      const [parts, consumers] = await Promise.all([
        platformStatus(deps),
        consumersOfHost(deps.store, deps.cfg.health, [deps.cfg.routerHealthSocket, deps.cfg.workersHealthSocket]),
      ])
      return { parts, consumers }
    },
  )

  api.get(
    '/admin/hosts',
    {
      schema: {
        summary: "The swarm's nodes (Docker hosts): state, availability, address, labels (admin only)",
        tags: ['admin'],
        response: { 200: Type.Object({ hosts: Type.Array(Host) }), '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      if (!deps.engine) throw new WharfError('WHARF_UNAVAILABLE', 'no Docker engine configured (WHARF_DOCKER_HOST)')
      try {
        return { hosts: await deps.engine.listNodes() }
      } catch (err) {
        throw new WharfError('WHARF_UNAVAILABLE', `the Docker engine cannot list the swarm's nodes: ${(err as Error).message}`, { cause: err })
      }
    },
  )

  api.get(
    '/admin/backups',
    {
      schema: {
        summary: "This platform's complete backups, newest first (admin only)",
        tags: ['admin'],
        response: { 200: Type.Array(Backup), '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      return (await deps.platform.backups()).map(backupView)
    },
  )

  api.post(
    '/admin/backups',
    {
      schema: {
        summary: 'Back the read-model database up to the store now (admin only)',
        tags: ['admin'],
        response: { 201: Backup, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const user = requireAdmin(req.user)
      const m = await deps.platform.backup({ trigger: 'manual', ...ctxOf(user, req.id) })
      return reply.status(201).send(backupView(m))
    },
  )

  api.post(
    '/admin/backups/:id/restore',
    {
      schema: {
        summary: 'Replace the read models with a backup; they catch up from the event log (admin only)',
        tags: ['admin'],
        params: IdParams,
        response: { 200: Type.Object({ backup: Backup, seq: Type.Integer(), tookMs: Type.Integer() }), '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (req) => {
      const user = requireAdmin(req.user)
      const r = await deps.platform.restore(req.params.id, ctxOf(user, req.id))
      return { backup: backupView(r.manifest), seq: r.seq, tookMs: r.tookMs }
    },
  )

  api.get(
    '/admin/exports',
    {
      schema: {
        summary: 'Complete exports of the event log in the store, newest first (admin only)',
        tags: ['admin'],
        querystring: Type.Object({ namespace: Type.Optional(Namespace) }, { additionalProperties: false }),
        response: { 200: Type.Array(Export), '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      return (await deps.platform.exports(req.query.namespace)).map(exportView)
    },
  )

  api.post(
    '/admin/exports',
    {
      schema: {
        summary: 'Write the whole event log to the store as newline-delimited JSON (admin only)',
        tags: ['admin'],
        response: { 201: Export, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const user = requireAdmin(req.user)
      return reply.status(201).send(exportView(await deps.platform.exportEvents(ctxOf(user, req.id))))
    },
  )

  api.post(
    '/admin/exports/:id/import',
    {
      config: { public: true },
      schema: {
        summary:
          'Append an export to this platform, whose event log must be empty or the start of that export (an admin, or the one-time import token that `make up` printed)',
        tags: ['admin'],
        params: IdParams,
        body: Type.Object(
          { namespace: Type.Optional(Namespace), importToken: Type.Optional(Type.String({ pattern: '^wit_[A-Za-z0-9_-]{32}$' })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ export: Export, imported: Type.Integer(), seq: Type.Integer(), tookMs: Type.Integer() }),
          '4xx': ErrorBody,
          '5xx': ErrorBody,
        },
      },
    },
    async (req) => {
      // An admin; or, while the log is empty (a new platform has no admin yet), the operator's one-time token.
      const token = bearerToken(req.headers.authorization)
      const user = token ? await authenticate(token) : undefined
      let byToken = false
      if (user) requireAdmin(user)
      else if (req.body.importToken && (await deps.store.lastSeq()) === 0 && checkImportToken(deps.cfg.home, req.body.importToken)) byToken = true
      else
        throw new WharfError(
          'WHARF_UNAUTHORIZED',
          (await deps.store.lastSeq()) > 0
            ? 'this platform has events already: sign in as an admin'
            : 'an import needs an admin, or the one-time import token that `make up` printed for this new platform (--import-token)',
        )
      const ns = req.body.namespace
      if (ns && ns !== deps.cfg.namespace && !deps.cfg.importFrom.includes(ns))
        throw new WharfError(
          'WHARF_FORBIDDEN',
          `namespace ${ns} is another platform's: this one imports only its own exports, or those of namespaces WHARF_IMPORT_FROM names`,
          { details: { namespace: ns } },
        )
      const r = await deps.platform.importEvents(req.params.id, { ...(ns ? { namespace: ns } : {}) })
      if (byToken) consumeImportToken(deps.cfg.home)
      return { export: exportView(r.manifest), imported: r.imported, seq: r.lastSeq, tookMs: r.tookMs }
    },
  )
}
