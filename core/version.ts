import { readFileSync } from 'node:fs'

/** Wharf's version, from package.json (found from the source tree or from dist/). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'wharf' && pkg.version) return pkg.version
    } catch {}
  }
  return '0.0.0'
}

export const VERSION = readVersion()
