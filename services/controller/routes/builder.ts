import { readFile } from 'node:fs/promises'
import Type from 'typebox'
import { WharfError } from '../../../core/errors.js'
import { hostKeyPath } from '../../../core/paths.js'
import { parsePublicKey } from '../accounts/keys.js'
import { ErrorBody } from '../accounts/schemas.js'
import type { RoutePlugin } from '../context.js'

/**
 * /v1/builder: where `git push` goes, and the builder's SSH host key, so the CLI can put it in
 * known_hosts and a first push does not stop at "The authenticity of host ... can't be established".
 */
export const builderRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/builder',
    {
      schema: {
        summary: "The builder's SSH address and host key (for git remotes and known_hosts)",
        tags: ['builds'],
        response: {
          200: Type.Object(
            { host: Type.String(), port: Type.Integer(), hostKey: Type.String(), fingerprint: Type.String(), knownHosts: Type.String() },
            { additionalProperties: false },
          ),
          '4xx': ErrorBody,
          '5xx': ErrorBody,
        },
      },
    },
    async () => {
      let text: string
      try {
        text = await readFile(`${hostKeyPath(deps.cfg.home)}.pub`, 'utf8')
      } catch {
        throw new WharfError('WHARF_UNAVAILABLE', 'the builder has not started yet: it makes its host key on its first start')
      }
      const key = parsePublicKey(text)
      const host = deps.cfg.host
      const port = deps.cfg.ports.builder
      return { host, port, hostKey: key.openssh, fingerprint: key.fingerprint, knownHosts: `${port === 22 ? host : `[${host}]:${port}`} ${key.openssh}` }
    },
  )
}
