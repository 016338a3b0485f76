import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { MAX_CHAIN_BYTES, MAX_KEY_BYTES, validatePair } from '../../../core/tls.js'
import { CertName, dataOf } from '../../../domain/index.js'
import { runAppCommand, signedIn } from '../apps/access.js'
import { AppName, AppParams, DomainName, ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'
import { visibleApp, listCerts, type CertView } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut }
const CertOut = Type.Object(
  {
    name: Type.String(),
    commonName: Type.String(),
    sans: Type.Array(Type.String()),
    notBefore: Type.String(),
    notAfter: Type.String(),
    fingerprint: Type.String(),
    expired: Type.Boolean(),
    domains: Type.Array(Type.String()),
    created: Type.String(),
  },
  { additionalProperties: false },
)
const OneCertOut = Type.Object({ cert: CertOut }, { additionalProperties: false })
const CertParams = Type.Object({ app: AppName, name: CertName }, { additionalProperties: false })
const DomainIn = Type.Object({ domain: DomainName }, { additionalProperties: false })

async function certOf(pool: Parameters<typeof listCerts>[0], app: string, name: string): Promise<CertView> {
  const cert = (await listCerts(pool, app)).find((c) => c.name === name)
  if (!cert) throw new WharfError('WHARF_NOT_FOUND', `${app} has no certificate ${name}`, { details: { app, name } })
  return cert
}

/**
 * `certs:add|list|attach|detach|remove`: TLS certificates of an app (on its `app.<name>` stream), served
 * by the router by SNI for the domains they are attached to. Answers never include the private key.
 */
export const certsRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/certs',
    {
      schema: {
        summary: "An app's TLS certificates and the domains each serves (never the key).",
        params: AppParams,
        response: { 200: Type.Object({ certs: Type.Array(CertOut) }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      await visibleApp(deps.pool, signedIn(req), req.params.app)
      return { certs: await listCerts(deps.pool, req.params.app) }
    },
  )

  api.post(
    '/apps/:app/certs',
    {
      schema: {
        summary: 'Add a TLS certificate: a PEM chain (leaf first) and its unencrypted private key, which must match and be valid now.',
        params: AppParams,
        body: Type.Object(
          {
            name: Type.Optional(CertName),
            // The exact limits (bytes) and their messages are in core/tls.ts; these only bound the parse.
            certificate: Type.String({ minLength: 1, maxLength: 2 * MAX_CHAIN_BYTES }),
            key: Type.String({ minLength: 1, maxLength: 2 * MAX_KEY_BYTES }),
          },
          { additionalProperties: false },
        ),
        response: { 201: OneCertOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      // Access first: a caller who may not use the app learns nothing from the checks of the pair.
      await visibleApp(deps.pool, signedIn(req), app)
      const cert = validatePair(req.body.certificate, req.body.key)
      const result = await runAppCommand(deps, req, app, { type: 'AddCert', cert, ...(req.body.name ? { name: req.body.name } : {}) }, ['certs'])
      // The events may start with a release that completes an earlier change (see AppState.pending).
      const added = dataOf(
        result.events.find((e) => e.type === 'CertAdded'),
        'CertAdded',
      )
      const name = added?.name ?? Object.entries(result.state.certs).find(([, c]) => c.fingerprint === cert.fingerprint)![0]
      return reply.status(201).send({ cert: await certOf(deps.pool, app, name) })
    },
  )

  api.post(
    '/apps/:app/certs/:name/attach',
    {
      schema: {
        summary: "Serve HTTPS for one of the app's domains with this certificate (it must cover the domain); replaces the domain's previous certificate.",
        params: CertParams,
        body: DomainIn,
        response: { 200: OneCertOut, ...errors },
      },
    },
    async (req) => {
      const { app, name } = req.params
      await runAppCommand(deps, req, app, { type: 'AttachCert', name, domain: req.body.domain, now: new Date().toISOString() }, ['certs'])
      return { cert: await certOf(deps.pool, app, name) }
    },
  )

  api.post(
    '/apps/:app/certs/:name/detach',
    {
      schema: {
        summary: 'Stop serving HTTPS for the domain with this certificate.',
        params: CertParams,
        body: DomainIn,
        response: { 200: OneCertOut, ...errors },
      },
    },
    async (req) => {
      const { app, name } = req.params
      await runAppCommand(deps, req, app, { type: 'DetachCert', name, domain: req.body.domain }, ['certs'])
      return { cert: await certOf(deps.pool, app, name) }
    },
  )

  api.delete(
    '/apps/:app/certs/:name',
    {
      schema: {
        summary: 'Remove a certificate; the domains it served are detached (plain HTTP again).',
        params: CertParams,
        response: { 200: Type.Object({ removed: CertOut }, { additionalProperties: false }), ...errors },
      },
    },
    async (req) => {
      const { app, name } = req.params
      await visibleApp(deps.pool, signedIn(req), app)
      const removed = await certOf(deps.pool, app, name)
      await runAppCommand(deps, req, app, { type: 'RemoveCert', name }, ['certs'])
      return { removed }
    },
  )
}
