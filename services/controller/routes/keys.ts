import Type from 'typebox'
import { KeyName } from '../../../domain/index.js'
import { addKey, keyChallenge, listKeys, removeKey } from '../accounts/handlers.js'
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
        summary:
          'Add an SSH public key (OpenSSH format), with proof that you hold its private key: the challenge of GET /v1/keys/challenge signed with it (ssh-keygen -Y sign -n wharf-keys); without it WHARF_KEY_UNPROVEN; a key held by anyone is refused',
        tags: ['keys'],
        body: Type.Object(
          {
            key: Type.String({ minLength: 1, maxLength: 16384 }),
            name: Type.Optional(KeyName),
            /** The challenge text, as GET /v1/keys/challenge gave it. */
            challenge: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
            /** The armored SSH signature of the challenge (`-----BEGIN SSH SIGNATURE-----`). */
            signature: Type.Optional(Type.String({ minLength: 1, maxLength: 16384 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Key, '4xx': ErrorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await addKey(deps, req.user!.username, req.body, req.id, deps.cfg.domain)),
  )

  api.get(
    '/keys/challenge',
    {
      schema: {
        summary: 'A challenge to sign with a key before adding it (ssh-keygen -Y sign -n wharf-keys): good for 10 minutes, for one key',
        tags: ['keys'],
        response: {
          200: Type.Object({ challenge: Type.String(), namespace: Type.String(), expiresAt: Type.String() }, { additionalProperties: false }),
          '4xx': ErrorBody,
        },
      },
    },
    async (req) => keyChallenge(deps, req.user!.username, deps.cfg.domain),
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
