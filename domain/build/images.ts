/**
 * Image references a user gives (`builds:create <image>`, a Dockerfile's `FROM`, `COPY --from`) and
 * what they may name: never an image id (the engine resolves a unique prefix of one, so `fa1f` could
 * be another app's image), and in the platform's own registry only an app the user may use.
 * Pure: the caller checks access and addresses.
 */
import { WharfError } from '../../core/errors.js'
import { APP_NAME_RE } from '../app/names.js'

/** What an image reference names. */
export type ImageSource =
  /** An image id (`sha256:...`) or what the engine could take for a prefix of one (bare hex). */
  | { kind: 'id' }
  /** A repository in a registry named by host (`127.0.0.1:5000/shop:git-abc`, `ghcr.io/x/y`). */
  | { kind: 'registry'; host: string; repo: string }
  /** A repository with no registry host (`busybox`, `node:20`, `library/x`): Docker Hub's, or the engine's local tag. */
  | { kind: 'bare'; repo: string }

/** Parses an image reference as Docker does (`[host[:port]/]path[:tag][@digest]`). */
export function imageSource(ref: string): ImageSource {
  const r = ref.trim()
  if (/^sha256:/i.test(r) || /^[0-9a-f]{1,64}$/i.test(r)) return { kind: 'id' }
  const slash = r.indexOf('/')
  const first = slash < 0 ? '' : r.slice(0, slash)
  const named = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))
  const path = (named ? r.slice(slash + 1) : r).replace(/@.*$/, '').replace(/:[^/]*$/, '')
  return named ? { kind: 'registry', host: first.toLowerCase(), repo: path } : { kind: 'bare', repo: path }
}

/** A registry host on this machine (`127.0.0.1:5000`, `localhost:5000`, `[::1]:5000`, `0.0.0.0`): the platform's registry, or one only it should reach. */
export function isLocalRegistryHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return name === 'localhost' || name.endsWith('.localhost') || /^127\./.test(name) || name === '0.0.0.0' || name === '::1' || name === '::'
}

/** One image a Dockerfile uses (`FROM x`, `COPY --from=x`) or one URL it fetches (`ADD <url>`), with its line. */
export type DockerfileRef = { kind: 'image'; ref: string; line: number } | { kind: 'url'; url: string; line: number }

/**
 * The images and URLs a Dockerfile names, for the builder to check before the engine sees them
 * (the engine fetches `ADD <url>` from the host itself, so a build could read the platform's ports).
 * Continuation lines are joined (with the `# escape=` directive's character); a stage name used by a
 * later `FROM` or `COPY --from` is not an image; a `$` in an `ADD` source or a `FROM` is answered as
 * what it is (the checker refuses what it cannot see through).
 */
export function dockerfileRefs(text: string): DockerfileRef[] {
  const esc = /^#\s*escape\s*=\s*`/im.test(text.split('\n').slice(0, 5).join('\n')) ? '`' : '\\'
  const out: DockerfileRef[] = []
  const stages = new Set<string>()
  const lines = text.replace(/\r\n/g, '\n').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1
    let line = lines[i]!
    if (/^\s*#/.test(line)) continue
    while (line.trimEnd().endsWith(esc) && i + 1 < lines.length) {
      line = `${line.trimEnd().slice(0, -1)} ${lines[++i]!}`
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (!m) continue
    const op = m[1]!.toUpperCase()
    const args = m[2]!.trim()
    if (op === 'FROM') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const image = words[0] ?? ''
      if (image && !stages.has(image.toLowerCase()) && image.toLowerCase() !== 'scratch') out.push({ kind: 'image', ref: image, line: start })
      if (words[1]?.toLowerCase() === 'as' && words[2]) stages.add(words[2].toLowerCase())
    } else if (op === 'COPY' || op === 'ADD') {
      const from = /--from=(\S+)/i.exec(args)?.[1]
      if (from && !stages.has(from.toLowerCase()) && !/^\d+$/.test(from)) out.push({ kind: 'image', ref: from, line: start })
      if (op === 'ADD') {
        const rest = args.replace(/--\S+/g, '').trim()
        let sources: string[]
        try {
          sources = rest.startsWith('[') ? (JSON.parse(rest) as string[]).slice(0, -1) : rest.split(/\s+/).slice(0, -1)
        } catch {
          sources = rest.split(/\s+/).slice(0, -1)
        }
        for (const s of sources) if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || s.includes('$')) out.push({ kind: 'url', url: s, line: start })
      }
    }
  }
  return out
}

/**
 * Refuses an image reference a user may not use: an image id or id prefix (`WHARF_INVALID`), a
 * variable (`WHARF_INVALID`: what it names is not known before the build), or a repository in a
 * registry on this machine other than that of an app `mayUse` says the user may use
 * (`WHARF_FORBIDDEN`). `where` says where the reference was (`FROM on line 3`).
 */
export async function checkImageRef(ref: string, mayUse: (app: string) => Promise<boolean>, where = 'the image'): Promise<void> {
  if (ref.includes('$')) throw new WharfError('WHARF_INVALID', `${where}: ${ref} is a variable; name the image itself`, { details: { image: ref } })
  const src = imageSource(ref)
  if (src.kind === 'id') {
    throw new WharfError('WHARF_INVALID', `${where}: ${ref} is (or could be taken for) an image id; name the image by repository and tag`, {
      details: { image: ref },
    })
  }
  if (src.kind === 'registry' && isLocalRegistryHost(src.host) && !(APP_NAME_RE.test(src.repo) && (await mayUse(src.repo)))) {
    throw new WharfError('WHARF_FORBIDDEN', `${where}: ${ref} is in the platform's registry, and not an image of an app you may deploy`, {
      details: { image: ref },
    })
  }
}
