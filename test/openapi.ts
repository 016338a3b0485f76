/**
 * For the authorization matrix and fuzz tests: every operation of `/v1/openapi.json`, and a request
 * to it with its path parameters filled in.
 */
import { request } from 'undici'

export interface Operation {
  /** `GET /v1/apps/{app}`: the key of the expectation tables. */
  key: string
  method: string
  /** The OpenAPI path, `{param}` style. */
  path: string
  params: string[]
  public: boolean
  /** The request body's JSON schema, if it has one. */
  body: Record<string, unknown> | undefined
  /** The query's parameters (name -> schema). */
  query: Record<string, Record<string, unknown>>
}

/** Every operation the controller documents, sorted by key. */
export async function operationsOf(base: string): Promise<Operation[]> {
  const res = await request(`${base}/v1/openapi.json`)
  const doc = (await res.body.json()) as { paths: Record<string, Record<string, Record<string, any>>> }
  const ops: Operation[] = []
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const parameters = (op.parameters ?? []) as { in: string; name: string; schema: Record<string, unknown> }[]
      ops.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        params: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        public: Array.isArray(op.security) && op.security.length === 0,
        body: op.requestBody?.content?.['application/json']?.schema,
        query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
      })
    }
  }
  return ops.sort((a, b) => a.key.localeCompare(b.key))
}

/** `path` with each `{param}` replaced by `values[param]` (URL-encoded unless `raw`). */
export function fillPath(path: string, values: Record<string, string>, raw = false): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = values[name] ?? 'x'
    return raw ? v : encodeURIComponent(v)
  })
}

/**
 * One request; answers the status and the parsed body. Streams (server-sent events) are cut once the
 * status is known, so an allowed `logs -f` does not hang the test.
 */
export async function send(
  base: string,
  method: string,
  path: string,
  opts: { token?: string | undefined; body?: string | undefined; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), 30_000)
  try {
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      signal: ac.signal,
      headers: {
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...opts.headers,
      },
      ...(opts.body !== undefined ? { body: opts.body } : {}),
    })
    if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      ac.abort()
      res.body.on('error', () => {})
      return { status: res.statusCode, body: undefined }
    }
    const text = await res.body.text()
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      body = text
    }
    return { status: res.statusCode, body }
  } finally {
    clearTimeout(timer)
  }
}
