import Type from 'typebox'
import { KeyName } from '../../../domain/index.js'
import { addKey, listKeys, removeKey } from '../accounts/handlers.js'
import { ErrorBody } from '../accounts/schemas.js'
import type { RoutePlugin } from '../context.js'

const Key = Type.Object(
  { fingerprint: Type.String(), name: Type.String(), type: Type.String(), publicKey: Type.String(), createdAt: Type.String() },
  { additionalProperties: false },
)

/** /v1/keys: the caller's SSH public keys (the builder lets a push in by their fingerprints). */
export const keyRoutes: RoutePlugin = (api, deps) => {
  api.post(
    '/keys',
    {
      schema: {
        summary: 'Add an SSH public key (OpenSSH format); a key held by anyone is refused',
        tags: ['keys'],
        body: Type.Object({ key: Type.String({ minLength: 1, maxLength: 16384 }), name: Type.Optional(KeyName) }, { additionalProperties: false }),
        response: { 201: Key, '4xx': ErrorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await addKey(deps, req.user!.username, req.body, req.id)),
  )

  api.get('/keys', { schema: { summary: "The caller's SSH keys", tags: ['keys'], response: { 200: Type.Array(Key), '4xx': ErrorBody } } }, async (req) =>
    listKeys(deps.pool, req.user!.username),
  )

  api.delete(
    '/keys/:id',
    {
      schema: {
        summary: "Remove one of the caller's keys, by fingerprint or name",
        tags: ['keys'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      await removeKey(deps, req.user!.username, req.params.id, req.id)
      return reply.status(204).send(null)
    },
  )
}
