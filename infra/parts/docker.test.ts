import t from 'tap'
import { mountsUnder } from './docker.js'

const mountinfo = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '870 25 0:4 net:[4026532500] /run/wharf-abc/netns/1-2fr9e0zq8d rw shared:400 - nsfs nsfs rw',
  '871 25 0:4 net:[4026532501] /run/wharf-abc/netns/ingress_sbox rw shared:401 - nsfs nsfs rw',
  '872 25 0:50 / /tmp/wharf-test-x/docker/data/overlay2/abc/merged rw - overlay overlay rw',
  '873 25 0:51 / /tmp/wharf-test-x/docker/data\\040two/m rw - tmpfs tmpfs rw',
  '874 25 0:4 net:[4026532502] /run/wharf-abcdef/netns/x rw - nsfs nsfs rw',
  '',
].join('\n')

t.test('the mount points below the roots, deepest first, escapes decoded, siblings with a common prefix left out', async (t) => {
  t.same(mountsUnder(['/run/wharf-abc', '/tmp/wharf-test-x/docker/data'], mountinfo), [
    '/tmp/wharf-test-x/docker/data/overlay2/abc/merged',
    '/run/wharf-abc/netns/1-2fr9e0zq8d',
    '/run/wharf-abc/netns/ingress_sbox',
  ])
  t.same(mountsUnder(['/tmp/wharf-test-x/docker/data two'], mountinfo), ['/tmp/wharf-test-x/docker/data two/m'])
  t.same(mountsUnder(['/nowhere'], mountinfo), [])
})
