import { engineStatus as statusOf, type ContainerEngine, type ImageInfo } from './engine.js'
import { WharfError } from '../errors.js'

/** The port a web process listens on when its image does not `EXPOSE` exactly one TCP port. */
export const DEFAULT_PORT = 5000

/** `127.0.0.1:5000/shop:git-abc` -> `127.0.0.1:5000` (the part before the first `/`, if it names a host). */
function registryOf(ref: string): string | undefined {
  const slash = ref.indexOf('/')
  if (slash < 0) return undefined
  const first = ref.slice(0, slash)
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined
}

function messageOf(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(err)
}

/**
 * Pushes `ref` (`127.0.0.1:<port>/<app>:<tag>`, already in the engine) to its registry, which needs
 * no auth (a loopback registry may be plain HTTP). Calls `onLine` with the push's progress, one line
 * per layer step (never the byte ticks). Answers the manifest digest (`sha256:...`).
 * Throws `WHARF_NOT_FOUND` when the engine has no such image, `WHARF_UNAVAILABLE` when the registry
 * cannot be reached or refuses the image.
 */
export async function pushImage(docker: ContainerEngine, ref: string, onLine?: (line: string) => void): Promise<string> {
  const registry = registryOf(ref) ?? 'docker.io'
  const refused = (why: string, cause?: unknown) =>
    new WharfError('WHARF_UNAVAILABLE', `the registry at ${registry} refused the image: ${why}`, { cause, details: { registry, image: ref } })
  if (!(await inspectOrUndefined(docker, ref))) throw new WharfError('WHARF_NOT_FOUND', `no image ${ref} in the Docker engine`, { details: { image: ref } })
  try {
    return await docker.pushImage(ref, onLine)
  } catch (err) {
    if (statusOf(err) === 404) throw new WharfError('WHARF_NOT_FOUND', `no image ${ref} in the Docker engine`, { cause: err, details: { image: ref } })
    throw refused(messageOf(err), err)
  }
}

/** The single TCP port the image's config `EXPOSE`s, else {@link DEFAULT_PORT} (none, several, or UDP only). */
export async function imagePort(docker: ContainerEngine, ref: string): Promise<number> {
  const info = await docker.inspectImage(ref)
  const exposed = info.exposedPorts
  const tcp = exposed
    .map((p) => /^(\d{1,5})(?:\/tcp)?$/.exec(p)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number)
    .filter((p) => p >= 1 && p <= 65535)
  return new Set(tcp).size === 1 ? tcp[0]! : DEFAULT_PORT
}

export interface ImportImageOptions {
  /** The image to release: a reference or id the engine knows, or a name in the platform registry. */
  source: string
  app: string
  /** The platform registry, `127.0.0.1:5000`. */
  registry: string
  /** Progress lines (pull, tag, push). */
  onLine?: (line: string) => void
  /** Whether a bare `name:tag` may be looked up as `<registry>/name:tag` (the caller may use the app `name`); default no. */
  mayUseRepo?: (repo: string) => Promise<boolean>
}

export interface ImportedImage {
  /** `<registry>/<app>:image-<first 12 hex digits of the image id>`. */
  image: string
  /** The manifest digest the registry holds it under. */
  digest: string
  /** What `$PORT` is for its web process: see {@link imagePort}. */
  port: number
}

async function inspectOrUndefined(docker: ContainerEngine, ref: string): Promise<ImageInfo | undefined> {
  try {
    return await docker.inspectImage(ref)
  } catch (err) {
    if (statusOf(err) === 404) return undefined
    throw new WharfError('WHARF_UNAVAILABLE', `the Docker engine cannot inspect ${ref}: ${messageOf(err)}`, { cause: err })
  }
}

/**
 * Pulls `ref` from the platform registry into the engine; answers false when the registry does
 * not have it (or cannot be reached). Never pulls from anywhere else: nothing here has the internet.
 */
async function pullFromRegistry(docker: ContainerEngine, ref: string, onLine?: (line: string) => void): Promise<boolean> {
  try {
    await docker.pullImage(ref, onLine)
    return true
  } catch {
    return false
  }
}

/**
 * An existing image as a build of `app` (`builds:create <image>`, Deis's `pull`): the image must be
 * in the engine, or in the platform registry (then it is pulled from there); it is tagged
 * `<registry>/<app>:image-<id12>` and pushed. Throws `WHARF_NOT_FOUND` when the image is in
 * neither, `WHARF_UNAVAILABLE` when the push fails.
 */
export async function importImage(docker: ContainerEngine, opts: ImportImageOptions): Promise<ImportedImage> {
  const { source, app, registry, onLine } = opts
  let local = source
  let info = await inspectOrUndefined(docker, source)
  if (!info) {
    // Only the platform registry may be pulled from: `<registry>/name:tag` as given, or a bare
    // `name:tag` looked up there.
    const named = registryOf(source)
    const bare = named === undefined && (await (opts.mayUseRepo?.(source.replace(/[:@].*$/, '')) ?? false))
    const candidate = named === registry ? source : bare ? `${registry}/${source}` : undefined
    if (candidate !== undefined) {
      onLine?.(`pulling ${candidate}`)
      if (await pullFromRegistry(docker, candidate, onLine)) {
        local = candidate
        info = await inspectOrUndefined(docker, candidate)
      }
    }
  }
  if (!info) {
    throw new WharfError('WHARF_NOT_FOUND', `no image ${source} in the Docker engine or the registry (images cannot be pulled from the internet here)`, {
      details: { image: source },
    })
  }
  const id = info.id.replace(/^sha256:/, '').slice(0, 12)
  const repo = `${registry}/${app}`
  const tag = `image-${id}`
  const image = `${repo}:${tag}`
  await docker.tagImage(local, repo, tag)
  onLine?.(`tagged ${image}`)
  const digest = await pushImage(docker, image, onLine)
  const port = await imagePort(docker, image)
  return { image, digest, port }
}
