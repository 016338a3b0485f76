import { request } from 'undici'

/**
 * Calls the controller at `base` for a benchmark: answers the parsed JSON body, throws on an error
 * status with its code and message.
 */
export function apiCaller(base: string) {
  return async function must<T>(method: 'GET' | 'POST' | 'DELETE', path: string, token?: string, body?: unknown): Promise<T> {
    const res = await request(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.body.text()
    const parsed = text ? JSON.parse(text) : undefined
    if (res.statusCode >= 400) throw new Error(`${method} ${path}: ${res.statusCode} ${parsed?.code ?? ''} ${parsed?.message ?? ''}`)
    return parsed as T
  }
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
