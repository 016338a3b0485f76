import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
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

/** keys:add, keys:list, keys:remove. */
export function keysTopic(program: Command): void {
  program
    .command('keys:add [path]')
    .description('add an SSH public key (default ~/.ssh/id_ed25519.pub, then ~/.ssh/id_rsa.pub)')
    .option('--name <name>', 'a name for the key (default: its comment)')
    .action(async (path: string | undefined, opts: { name?: string }) => {
      const key = readKey(path)
      if (key.text.length > 16384) throw new CliError('WHARF_INVALID', `${key.path} is too large to be a public key`)
      const added = await ApiClient.fromEnv().call<KeyBody>('POST', '/v1/keys', { key: key.text, ...(opts.name ? { name: opts.name } : {}) })
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
