import { WharfError } from '../../core/errors.js'

/** A hook id: `hk_` and 16 hex digits, random (made by the controller). */
export const HOOK_ID_PATTERN = '^hk_[0-9a-f]{16}$'
export const HOOK_ID_RE = new RegExp(HOOK_ID_PATTERN)
/** One `--events` pattern: an event type, or a prefix of one ending in `*` (`Release*`), or `*` alone. */
export const EVENT_PATTERN = '^(?:[A-Z][A-Za-z]{0,63}\\*?|\\*)$'
const EVENT_PATTERN_RE = new RegExp(EVENT_PATTERN)
/** Longest hook URL taken. */
export const MAX_HOOK_URL = 2048
/** Most `--events` patterns per hook. */
export const MAX_HOOK_PATTERNS = 32

function invalid(message: string, url: string): WharfError {
  return new WharfError('WHARF_INVALID', message, { details: { url: url.slice(0, 200) } })
}

/**
 * Checks a hook URL: `http(s)://host[:port]/path`, at most {@link MAX_HOOK_URL} characters, no user or
 * password in it (a secret in a URL ends up in logs; the signature is how a subscriber knows the
 * sender). Throws `WHARF_INVALID` saying what is wrong. Whether the address may be reached is
 * core/outbound.ts's to say.
 */
export function parseHookUrl(raw: string): URL {
  const url = raw.trim()
  if (!url) throw invalid('a hook needs a URL: https://host/path', raw)
  if (url.length > MAX_HOOK_URL) throw invalid(`a hook URL is at most ${MAX_HOOK_URL} characters`, raw)
  if (/\s/.test(url)) throw invalid('a hook URL has no spaces', raw)
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw invalid(`not a URL: ${url.slice(0, 100)}`, raw)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`a hook URL is https:// or http://, not ${u.protocol}//`, raw)
  if (u.username || u.password) throw invalid('a hook URL carries no user or password: the signature tells the subscriber who sent it', raw)
  if (!u.hostname) throw invalid('a hook URL needs a host', raw)
  if (u.hash) throw invalid('a hook URL has no #fragment', raw)
  return u
}

/** Parses `--events 'Release*,Deploy*,ConfigSet'`: trimmed, de-duplicated; none (or empty) means every event. Throws `WHARF_INVALID`. */
export function parseEventPatterns(raw: readonly string[] | string | undefined): string[] {
  const list = (typeof raw === 'string' ? raw.split(',') : (raw ?? [])).map((p) => p.trim()).filter(Boolean)
  if (list.length > MAX_HOOK_PATTERNS) throw new WharfError('WHARF_INVALID', `a hook takes at most ${MAX_HOOK_PATTERNS} event patterns`)
  for (const p of list) {
    if (!EVENT_PATTERN_RE.test(p)) {
      throw new WharfError('WHARF_INVALID', `${JSON.stringify(p.slice(0, 70))} is not an event pattern: an event type (ConfigSet) or a prefix and * (Release*)`)
    }
  }
  return [...new Set(list)]
}

/** Whether an event type matches a hook's patterns (no patterns: every type). */
export function matchesPatterns(patterns: readonly string[], type: string): boolean {
  if (patterns.length === 0) return true
  return patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : p === type))
}
