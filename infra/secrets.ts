import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { Paths } from '../core/paths.js'

/**
 * A password `make up` generates once (24 random bytes, base64url: nothing to quote in any config
 * syntax) into `file` under $WHARF_HOME/secrets (directory 700, file 600), and reads back after.
 */
export function generatedSecret(paths: Pick<Paths, 'secrets'>, file: string): string {
  if (!existsSync(file)) {
    mkdirSync(paths.secrets, { recursive: true, mode: 0o700 })
    writeFileSync(file, randomBytes(24).toString('base64url'), { mode: 0o600 })
  }
  return readFileSync(file, 'utf8').trim()
}
