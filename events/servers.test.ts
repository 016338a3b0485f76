import t from 'tap'
import { natsServers } from './servers.js'

t.test('the user and password come out of the URLs, and are never in what is shown', async (t) => {
  t.same(natsServers('nats://127.0.0.1:14222'), { servers: ['nats://127.0.0.1:14222'], shown: 'nats://127.0.0.1:14222' })
  t.same(natsServers('nats://wharf:p%40ss%3Aw@127.0.0.1:14222'), {
    servers: ['nats://127.0.0.1:14222'],
    user: 'wharf',
    pass: 'p@ss:w',
    shown: 'nats://127.0.0.1:14222',
  })
  const cluster = natsServers('nats://wharf:pw@10.0.0.1:4222, nats://wharf:pw@10.0.0.2:4222,nats://10.0.0.3:4222')
  t.same(cluster.servers, ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222', 'nats://10.0.0.3:4222'])
  t.match(cluster, { user: 'wharf', pass: 'pw' })
  t.notMatch(cluster.shown, /pw/)
  t.same(natsServers(['nats://a:1', 'nats://b:2']).servers, ['nats://a:1', 'nats://b:2'])
})
