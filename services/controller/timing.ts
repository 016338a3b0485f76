import type { FastifyInstance, FastifyRequest } from 'fastify'

/**
 * Where a request's time went, by step (ms), sent back as a `Server-Timing` header
 * (https://www.w3.org/TR/server-timing/): `auth` (token look-up), and for a command `turn` (waiting
 * for the commands before it on the same stream in this process), `decide` (deciding, with a read of
 * the stream when this process's fold of it is not current), `append` (the log's ack), `readmodels`
 * (read your writes: until the read models it touches include it) and, for a route that reads its
 * answer, `query`. Benchmarks read it; browsers show it.
 */
export type Steps = Record<string, number>

declare module 'fastify' {
  interface FastifyRequest {
    /** The steps timed so far (see {@link timed}). */
    steps?: Steps
  }
}

/** Adds `ms` to step `name` of the request. */
export function timed(req: { steps?: Steps }, name: string, ms: number): void {
  req.steps ??= {}
  req.steps[name] = (req.steps[name] ?? 0) + ms
}

/** Runs `fn` and adds its time to step `name` of the request. */
export async function timing<T>(req: { steps?: Steps }, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  try {
    return await fn()
  } finally {
    timed(req, name, performance.now() - t0)
  }
}

/** The `Server-Timing` header value of `steps`. */
export function serverTiming(steps: Steps): string {
  return Object.entries(steps)
    .map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`)
    .join(', ')
}

/** Sends the steps a request timed as `Server-Timing`. */
export function sendServerTiming(app: FastifyInstance): void {
  app.addHook('onSend', async (req: FastifyRequest, reply) => {
    if (req.steps) reply.header('server-timing', serverTiming(req.steps))
  })
}
