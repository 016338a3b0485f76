import { request } from 'undici'
import { readFileSync } from 'node:fs'
const { token } = JSON.parse(readFileSync('/tmp/flow/alice/.wharf/client.json', 'utf8'))
const lat: number[] = []
for (let i = 0; i < 200; i++) {
  const t0 = performance.now()
  const r = await request('http://127.0.0.1:8000/v1/apps/shop/config', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ values: { [`K${i % 50}`]: String(i) } }) })
  await r.body.text()
  lat.push(performance.now() - t0)
}
lat.sort((a, b) => a - b)
console.log('sequential config:set p50', lat[100]!.toFixed(1), 'p99', lat[198]!.toFixed(1), 'max', lat[199]!.toFixed(1))
