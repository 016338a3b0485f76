import Type from 'typebox'
import { includedSeq, type BackupManifest, type ExportManifest } from '../../../core/backups.js'
import { WharfError } from '../../../core/errors.js'
import { StoreObjectId } from '../../../domain/index.js'
import { ErrorBody } from '../accounts/schemas.js'
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

const IdParams = Type.Object({ id: StoreObjectId }, { additionalProperties: false })
/** Another platform's exports are under its namespace. */
const Namespace = Type.String({ pattern: '^[a-z][a-z0-9_]{0,40}$' })

/**
 * /v1/admin: the platform's parts, backups of the read models and exports of the event log (admin
 * only). Importing an export is the one exception: it needs no token while this platform's event log
 * is empty (a new platform has no users yet; the first registration is just as open).
 */
export const adminRoutes: RoutePlugin = (api, deps) => {
  const ctxOf = (user: AuthUser, correlationId: string) => ({ actor: `user:${user.username}`, correlationId })
  const authenticate = tokenAuthenticator(deps)

  api.get(
    '/admin/status',
    {
      schema: {
        summary: 'Each real part as up or down, with its address and version (admin only)',
        tags: ['admin'],
        response: { 200: Type.Object({ parts: Type.Array(Part) }), '4xx': ErrorBody },
      },
    },
    async (req) => {
      requireAdmin(req.user)
      return { parts: await platformStatus(deps) }
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
        summary: 'Append an export to this platform, whose event log must be empty (no token needed then) or the start of that export',
        tags: ['admin'],
        params: IdParams,
        body: Type.Object({ namespace: Type.Optional(Namespace) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ export: Export, imported: Type.Integer(), seq: Type.Integer(), tookMs: Type.Integer() }),
          '4xx': ErrorBody,
          '5xx': ErrorBody,
        },
      },
    },
    async (req) => {
      // A platform with events has users: then only an admin may even try (and is told it is not empty).
      if ((await deps.store.lastSeq()) > 0) {
        const token = bearerToken(req.headers.authorization)
        const user = token ? await authenticate(token) : undefined
        if (!user) throw new WharfError('WHARF_UNAUTHORIZED', 'this platform has events already: sign in as an admin')
        requireAdmin(user)
      }
      const r = await deps.platform.importEvents(req.params.id, { ...(req.body.namespace ? { namespace: req.body.namespace } : {}) })
      return { export: exportView(r.manifest), imported: r.imported, seq: r.lastSeq, tookMs: r.tookMs }
    },
  )
}
