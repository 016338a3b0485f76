import { useEffect, useState } from 'preact/hooks'
import { ago, api } from './api.js'

interface Part {
  part: string
  up: boolean
  address: string
  version?: string
  detail?: string
}
interface Backup {
  id: string
  createdAt: string
  trigger: string
  actor: string
  bytes: number
}
interface User {
  username: string
  email: string
  admin: boolean
  createdAt: string
}

/** The platform page (admins): each part up or down (admin:status), backups, users. */
export function AdminPage() {
  const [parts, setParts] = useState<Part[] | undefined>()
  const [backups, setBackups] = useState<Backup[] | undefined>()
  const [users, setUsers] = useState<User[] | undefined>()
  const [error, setError] = useState('')
  const [message, setMessage] = useState('')
  const [busy, setBusy] = useState(false)
  const load = () => {
    api<{ parts: Part[] }>('GET', '/v1/admin/status').then(
      (r) => setParts(r.parts),
      (e: Error) => setError(e.message),
    )
    api<Backup[]>('GET', '/v1/admin/backups').then(setBackups, () => setBackups([]))
    api<User[]>('GET', '/v1/users').then(setUsers, (e: Error) => setError(e.message))
  }
  useEffect(load, [])
  const backup = async () => {
    setBusy(true)
    setMessage('')
    try {
      const b = await api<Backup>('POST', '/v1/admin/backups')
      setMessage(`Backup ${b.id} made`)
      load()
    } catch (err) {
      setMessage((err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  return (
    <div class="admin">
      <h1>Platform</h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <section class="card" aria-labelledby="parts-title">
        <h2 id="parts-title">Parts</h2>
        {!parts && <p class="loading">Probing each part…</p>}
        {parts && (
          <table>
            <thead>
              <tr>
                <th scope="col">Part</th>
                <th scope="col">State</th>
                <th scope="col">Address</th>
                <th scope="col">Version</th>
              </tr>
            </thead>
            <tbody>
              {parts.map((p) => (
                <tr key={p.part} data-part={p.part}>
                  <th scope="row">{p.part}</th>
                  <td>
                    <span class={`status status-${p.up ? 'up' : 'failed'}`} title={p.detail}>
                      {p.up ? 'up' : 'down'}
                    </span>
                  </td>
                  <td>
                    <code>{p.address}</code>
                  </td>
                  <td>{p.version ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" aria-labelledby="backups-title">
        <div class="bar">
          <h2 id="backups-title">Backups</h2>
          <button type="button" onClick={backup} disabled={busy}>
            {busy ? 'Backing up…' : 'Back up now'}
          </button>
        </div>
        {message && <p role="status">{message}</p>}
        {backups?.length === 0 && <p class="muted">No backups (or no store configured).</p>}
        <ul class="plain">
          {backups?.map((b) => (
            <li key={b.id}>
              <code>{b.id}</code> {b.trigger} by {b.actor}, {(b.bytes / 1024).toFixed(0)} KiB, <span title={b.createdAt}>{ago(b.createdAt)}</span>
            </li>
          ))}
        </ul>
      </section>
      <section class="card" aria-labelledby="users-title">
        <h2 id="users-title">Users</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            {users?.map((u) => (
              <tr key={u.username}>
                <th scope="row">{u.username}</th>
                <td>{u.email}</td>
                <td>{u.admin ? 'admin' : 'user'}</td>
                <td title={u.createdAt}>{ago(u.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  )
}
