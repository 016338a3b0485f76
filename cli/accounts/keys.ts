import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { ApiClient, CliError } from '../client.js'
import { printList } from '../output.js'

interface KeyBody {
  fingerprint: string
  name: string
  type: string
  publicKey: string
  createdAt: string
}

/** The key to add: `path`, else ~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub. */
function readKey(path: string | undefined): { path: string; text: string } {
  const home = process.env.HOME || homedir()
  const candidates = path ? [path] : [join(home, '.ssh', 'id_ed25519.pub'), join(home, '.ssh', 'id_rsa.pub')]
  for (const p of candidates) {
    try {
      return { path: p, text: readFileSync(p, 'utf8') }
    } catch (err) {
      if (path) throw new CliError('WHARF_INVALID', `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  throw new CliError('WHARF_INVALID', `no public key at ${candidates.join(' or ')}; give a path (or run ssh-keygen)`)
}

/**
 * Signs `challenge` with the key whose public half is at `pubPath`, as `ssh-keygen -Y sign` does:
 * with the private key beside it (`<path>` without `.pub`, asking for its passphrase if it has one)
 * or, when ssh-agent holds the key, through the agent. Answers the armored signature.
 */
function signChallenge(pubPath: string, challenge: string, namespace: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-key-proof-'))
  try {
    const file = join(dir, 'challenge')
    writeFileSync(file, challenge)
    // The challenge is a file (not stdin), so a passphrase prompt can read the terminal.
    const res = spawnSync('ssh-keygen', ['-Y', 'sign', '-n', namespace, '-f', pubPath, file], { stdio: ['inherit', 'pipe', 'pipe'] })
    if (res.error) {
      throw new CliError('WHARF_INVALID', `cannot run ssh-keygen (OpenSSH 8.2 or later signs the proof that you hold the key): ${res.error.message}`)
    }
    if (res.status !== 0) {
      const why = res.stderr.toString().trim().split('\n').slice(-3).join('; ')
      throw new CliError(
        'WHARF_KEY_UNPROVEN',
        `cannot sign with the private key of ${pubPath} (beside it without .pub, or in ssh-agent): ${why || `ssh-keygen exited ${res.status}`}`,
      )
    }
    return readFileSync(`${file}.sig`, 'utf8')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** keys:add, keys:list, keys:remove. */
export function keysTopic(program: Command): void {
  program
    .command('keys:add [path]')
    .description(
      'add an SSH public key (default ~/.ssh/id_ed25519.pub, then ~/.ssh/id_rsa.pub), signing a challenge with its private key (beside it, or in ssh-agent)',
    )
    .option('--name <name>', 'a name for the key (default: its comment)')
    .action(async (path: string | undefined, opts: { name?: string }) => {
      const key = readKey(path)
      if (key.text.length > 16384) throw new CliError('WHARF_INVALID', `${key.path} is too large to be a public key`)
      // Never sent anywhere: the private key only signs, here.
      if (/PRIVATE KEY/.test(key.text)) throw new CliError('WHARF_INVALID', `${key.path} is a private key: give the public key (the .pub file)`)
      const api = ApiClient.fromEnv()
      // Proof that the key is yours: the API's challenge signed with its private key.
      const { challenge, namespace } = await api.call<{ challenge: string; namespace: string }>('GET', '/v1/keys/challenge')
      const signature = signChallenge(key.path, challenge, namespace)
      const added = await api.call<KeyBody>('POST', '/v1/keys', { key: key.text, ...(opts.name ? { name: opts.name } : {}), challenge, signature })
      console.log(`Added ${added.type} key ${added.name} (${added.fingerprint}).`)
    })

  program
    .command('keys:list')
    .description('your SSH keys')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const keys = await ApiClient.fromEnv().call<KeyBody[]>('GET', '/v1/keys')
      printList(
        keys as unknown as Record<string, unknown>[],
        [{ key: 'name' }, { key: 'type' }, { key: 'fingerprint' }, { key: 'createdAt', title: 'added' }],
        { json: opts.json, empty: 'No keys: add one with `wharf keys:add`.' },
      )
    })

  program
    .command('keys:remove <key>')
    .description('remove one of your SSH keys, by fingerprint or name')
    .action(async (key: string) => {
      await ApiClient.fromEnv().call('DELETE', `/v1/keys/${encodeURIComponent(key)}`)
      console.log(`Removed ${key}.`)
    })
}
