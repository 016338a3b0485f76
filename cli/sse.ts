import { request } from 'undici'
import { CliError, type ApiClient } from './client.js'

/**
 * Opens a server-sent events stream of the controller (`GET <path>`), or throws the API's error as a
 * CliError. Answers the body, read with {@link sseData}. `signal` ends the stream and its connection.
 */
export async function openEventStream(client: ApiClient, path: string, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Buffer>> {
  if (!client.url) throw new CliError('WHARF_INVALID', 'no controller: run `wharf auth:login <url>` first (or set WHARF_URL)')
  let res
  try {
    res = await request(`${client.url}${path}`, {
      headers: { accept: 'text/event-stream', ...(client.token ? { authorization: `Bearer ${client.token}` } : {}) },
      bodyTimeout: 0,
      // Aborting closes the connection: a destroyed body alone may leave it open until the server writes again.
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
  } catch (err) {
    throw new CliError('WHARF_UNAVAILABLE', `cannot reach the controller at ${client.url}: ${(err as Error).message}`)
  }
  if (res.statusCode >= 400) {
    const e = (await res.body.json().catch(() => ({}))) as { code?: string; message?: string }
    throw new CliError(e.code ?? `HTTP_${res.statusCode}`, e.message ?? `the controller answered ${res.statusCode}`)
  }
  // An abort destroys the body with an error: a reader iterating it gets the error; one that stopped reading must not crash on it.
  if (opts.signal) res.body.on('error', () => {})
  return res.body
}

/** The `data:` of each server-sent event of a body, a list per chunk read (comments and events without data are skipped). */
export async function* sseData(body: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  let buf = ''
  for await (const chunk of body) {
    buf += chunk.toString()
    const out: string[] = []
    let end
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const data = buf
        .slice(0, end)
        .split('\n')
        .find((l) => l.startsWith('data: '))
      buf = buf.slice(end + 2)
      if (data) out.push(data.slice('data: '.length))
    }
    if (out.length) yield out
  }
}
