import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ssh2 from 'ssh2'

/** The builder's SSH host key (private; the public one is beside it with `.pub`). */
export function hostKeyPath(home: string): string {
  return join(home, 'builder', 'ssh_host_ed25519_key')
}

/**
 * The builder's SSH host key, made once under `$WHARF_HOME/builder/` and kept, so clients that
 * trusted it keep trusting it. Answers the private key (OpenSSH format) and the public line.
 */
export function ensureHostKey(home: string): { privateKey: string; publicKey: string; path: string } {
  const path = hostKeyPath(home)
  if (!existsSync(path)) {
    mkdirSync(join(home, 'builder'), { recursive: true, mode: 0o700 })
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'wharf-builder' })
    writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 })
    writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' })
  }
  return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim(), path }
}
