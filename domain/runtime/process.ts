/**
 * How a process of a release is made, shared by the scheduler (Swarm tasks) and `wharf run`
 * (one-off containers): its environment and its limits. Pure: no I/O.
 */

/** The port a web process listens on when the release names none. */
export const DEFAULT_PORT = 5000

/** What {@link processEnv} reads of a release. */
export interface ProcessRelease {
  app: string
  version: number
  port?: number | undefined
  config: Record<string, string>
}

/**
 * The environment of a process of `type` (a Swarm task or a one-off run): the release's config, then
 * `PORT`, `WHARF_APP`, `WHARF_RELEASE` (`v3`, as Heroku's release version) and `WHARF_PROCESS_TYPE`.
 */
export function processEnv(release: ProcessRelease, type: string): Record<string, string> {
  return {
    ...release.config,
    PORT: String(release.port ?? DEFAULT_PORT),
    WHARF_APP: release.app,
    WHARF_RELEASE: `v${release.version}`,
    WHARF_PROCESS_TYPE: type,
  }
}

/** An environment as Docker takes it: `K=V` strings, sorted by key. */
export function envList(env: Record<string, string>): string[] {
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${env[k]}`)
}

/** `512M`, `1G`, `65536` -> bytes; undefined for anything else. */
export function memoryBytes(limit: string | undefined): number | undefined {
  const m = limit ? /^([1-9][0-9]{0,9})([KMG]?)$/.exec(limit) : null
  if (!m) return undefined
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] as '' | 'K' | 'M' | 'G']
  return Number(m[1]) * unit
}
