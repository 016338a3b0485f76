import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { cgroupDirs, checkHostsOptions } from './hosts.js'

t.test('hosts options: defaults, and names and ranges that become interface names and routes are checked', async (t) => {
  t.strictSame(checkHostsOptions({ dir: '/x' }), { prefix: 'wharf', subnet: '192.168.217', count: 3 })
  t.strictSame(checkHostsOptions({ dir: '/x', prefix: 'w17a', subnet: '172.20.5', count: 9 }), { prefix: 'w17a', subnet: '172.20.5', count: 9 })
  for (const prefix of ['', 'Wharf', 'toolongname', 'a-b', '1abc', 'a;rm'])
    t.throws(() => checkHostsOptions({ dir: '/x', prefix }), /prefix/, `prefix ${JSON.stringify(prefix)}`)
  // 10.0.0.0/8 is Swarm's overlay pool; public ranges are not ours to take.
  for (const subnet of ['10.1.2', '8.8.8', '192.168.300', '172.32.0', '192.168.1.0', '192.168'])
    t.throws(() => checkHostsOptions({ dir: '/x', subnet }), /subnet/, `subnet ${subnet}`)
  for (const count of [0, 10, 1.5]) t.throws(() => checkHostsOptions({ dir: '/x', count }), /count/)
  t.throws(
    () =>
      checkHostsOptions(
        { dir: '/x', subnet: '192.168.5' },
        'default via 192.0.2.1 dev eth0\n192.168.5.0/24 dev br-x proto kernel scope link src 192.168.5.1\n',
      ),
    /already routed/,
  )
  t.doesNotThrow(() => checkHostsOptions({ dir: '/x', subnet: '192.168.5' }, '192.168.50.0/24 dev x\n'))
})

t.test('cgroup directories of a parent, in every hierarchy, deepest first', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wharf-cg-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'memory', 'w-h1', 'abc'), { recursive: true })
  mkdirSync(join(root, 'pids', 'w-h1'), { recursive: true })
  mkdirSync(join(root, 'pids', 'w-h2'), { recursive: true })
  t.strictSame(cgroupDirs('w-h1', root), [join(root, 'memory', 'w-h1', 'abc'), join(root, 'memory', 'w-h1'), join(root, 'pids', 'w-h1')])
  t.strictSame(cgroupDirs('w-h9', root), [])
})
