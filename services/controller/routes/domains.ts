import Type from 'typebox'
import { signedIn } from '../apps/access.js'
import { addDomain, removeDomain } from '../apps/domains.js'
import { AppName, AppParams, DomainName, ErrorOut } from '../apps/schemas.js'
import { answerAt, At } from '../apps/at.js'
import type { RoutePlugin } from '../context.js'
import { visibleApp, getDomains } from '../../../projections/index.js'

const errors = { 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut }
const DomainsOut = Type.Object(
  { domains: Type.Array(Type.Object({ domain: Type.String(), created: Type.String() }, { additionalProperties: false })) },
  { additionalProperties: false },
)

/** `domains:add|list|remove`: a domain belongs to one app (a `domain.<hash>` claim stream). */
export const domainsRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/apps/:app/domains',
    {
      schema: {
        summary: "An app's custom domains (as of a point of the event log with `at`).",
        params: AppParams,
        querystring: Type.Object({ at: Type.Optional(At) }, { additionalProperties: false }),
        response: { 200: DomainsOut, ...errors },
      },
    },
    async (req, reply) => {
      const { app } = req.params
      await visibleApp(deps.pool, signedIn(req), app)
      return { domains: await answerAt(deps, reply, app, req.query.at, ['domains'], (db) => getDomains(db, app)) }
    },
  )

  api.post(
    '/apps/:app/domains',
    {
      schema: {
        summary: 'Add a custom domain (lower-case host name; one app per domain).',
        params: AppParams,
        body: Type.Object({ domain: DomainName }, { additionalProperties: false }),
        response: { 201: DomainsOut, ...errors },
      },
    },
    async (req, reply) => {
      await addDomain(deps, req, req.params.app, req.body.domain)
      return reply.status(201).send({ domains: await getDomains(deps.pool, req.params.app) })
    },
  )

  api.delete(
    '/apps/:app/domains/:domain',
    {
      schema: {
        summary: 'Remove a custom domain.',
        params: Type.Object({ app: AppName, domain: DomainName }, { additionalProperties: false }),
        response: { 200: DomainsOut, ...errors },
      },
    },
    async (req) => {
      await removeDomain(deps, req, req.params.app, req.params.domain)
      return { domains: await getDomains(deps.pool, req.params.app) }
    },
  )
}
