import t from 'tap'
import { clusterUrl, memberConfig } from './nats-cluster.js'

const members = [
  { name: 'n1', host: '127.0.0.1', clientPort: 4001, clusterPort: 6001 },
  { name: 'n2', host: '192.168.217.12', clientPort: 4222, clusterPort: 6222 },
]

t.test('a member routes to every other member, with JetStream in its own directory', async (t) => {
  const conf = memberConfig(members[0]!, members, '/d/n1', 'wharf')
  t.match(conf, /server_name: "n1"/)
  t.match(conf, /listen: "127.0.0.1:4001"/)
  t.match(conf, /jetstream \{ store_dir: "\/d\/n1\/js" \}/)
  t.match(conf, /name: "wharf"\n {2}listen: "127.0.0.1:6001"/)
  t.match(conf, /"nats-route:\/\/192.168.217.12:6222"/)
  t.notMatch(conf, /nats-route:\/\/127.0.0.1:6001/, 'not to itself')
  t.match(conf, /ping_interval: "2s"\nping_max: 2/, 'a client cut off (no RST) is dropped within seconds')
  t.equal(clusterUrl(members), 'nats://127.0.0.1:4001,nats://192.168.217.12:4222')
  t.notMatch(conf, /http:/, 'no monitoring port unless asked')
  t.match(memberConfig({ ...members[1]!, monitorPort: 8222 }, members, '/d/n2', 'wharf'), /http: "192.168.217.12:8222"/)
})

t.test('names and addresses that would break the config are refused', async (t) => {
  t.throws(() => memberConfig({ ...members[0]!, name: 'n1"; x' }, members, '/d', 'wharf'), /names must be/)
  t.throws(() => memberConfig(members[0]!, [...members, { name: 'n3', host: 'evil"}', clientPort: 1, clusterPort: 2 }], '/d', 'wharf'), /not an IPv4/)
})
