import { createHash } from 'node:crypto'
import { WharfError } from '../../core/errors.js'

/** What a drain sends over: RFC 5424 syslog on TCP or TLS (octet-counted), or HTTPS POSTs of such frames. */
export type DrainKind = 'syslog' | 'syslog+tls' | 'https'

export interface DrainUrl {
  kind: DrainKind
  /** The URL as given, trimmed. */
  url: string
  host: string
  port: number
}

/** Longest drain URL taken. */
export const MAX_DRAIN_URL = 2048

function invalid(message: string, url: string): WharfError {
  return new WharfError('WHARF_INVALID', message, { details: { url: url.slice(0, 200) } })
}

/**
 * Checks a drain URL: `syslog://host:port`, `syslog+tls://host:port` or `https://host[:port]/path`.
 * Throws `WHARF_INVALID` saying what is wrong. Whether the host answers is not checked: a drain that
 * is down is retried, never waited for.
 */
export function parseDrainUrl(raw: string): DrainUrl {
  const url = raw.trim()
  if (!url) throw invalid('a drain needs a URL: syslog://host:port, syslog+tls://host:port or https://host/path', raw)
  if (url.length > MAX_DRAIN_URL) throw invalid(`a drain URL is at most ${MAX_DRAIN_URL} characters`, raw)
  if (/\s/.test(url)) throw invalid('a drain URL has no spaces', raw)
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw invalid(`not a URL: ${url.slice(0, 100)}`, raw)
  }
  const kind = u.protocol.slice(0, -1) as DrainKind
  if (kind !== 'syslog' && kind !== 'syslog+tls' && kind !== 'https') {
    throw invalid(`a drain is syslog://, syslog+tls:// or https://, not ${u.protocol}//`, raw)
  }
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (!host) throw invalid('a drain URL needs a host', raw)
  if (kind === 'https') return { kind, url, host, port: u.port ? Number(u.port) : 443 }
  if (!u.port) throw invalid(`a ${kind} drain needs a port: ${kind}://${host}:PORT`, raw)
  if (u.username || u.password || (u.pathname && u.pathname !== '/') || u.search || u.hash) {
    throw invalid(`a ${kind} drain is ${kind}://host:port, with no user, path or query`, raw)
  }
  return { kind, url, host, port: Number(u.port) }
}

/** A drain's id: `d.` and 12 hex digits of the URL's SHA-256 (the same URL twice is the same drain). */
export function drainId(url: string): string {
  return `d.${createHash('sha256').update(url.trim()).digest('hex').slice(0, 12)}`
}
