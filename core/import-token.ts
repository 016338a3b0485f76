/**
 * The one-time import token: lets the operator of a new platform (no users yet, so no admin) import
 * an event-log export. `make up` makes it under `$WHARF_HOME/secrets/import-token` and prints it
 * while the platform's event log is empty; a successful import deletes it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function importTokenPath(home: string): string {
  return join(home, 'secrets', 'import-token')
}

/** The token, made if missing (mode 0600). */
export function ensureImportToken(home: string): string {
  const path = importTokenPath(home)
  if (existsSync(path)) return readFileSync(path, 'utf8').trim()
  mkdirSync(join(home, 'secrets'), { recursive: true, mode: 0o700 })
  const token = `wit_${randomBytes(24).toString('base64url')}`
  writeFileSync(path, `${token}\n`, { mode: 0o600 })
  return token
}

/** True when `given` is the platform's import token (compared in constant time); false when there is none. */
export function checkImportToken(home: string, given: string | undefined): boolean {
  const path = importTokenPath(home)
  if (!given || !existsSync(path)) return false
  const want = Buffer.from(readFileSync(path, 'utf8').trim())
  const got = Buffer.from(given)
  return want.length === got.length && timingSafeEqual(want, got)
}

/** Deletes the token: it served its one import. */
export function consumeImportToken(home: string): void {
  rmSync(importTokenPath(home), { force: true })
}
