import t from 'tap'
import { logLimits } from './stream.js'

t.test('the log stream limits from the config: hours to ms, MiB to bytes', async (t) => {
  t.same(logLimits({ logs: { streamHours: 24, streamMb: 512 } }), { maxAgeMs: 86_400_000, maxBytes: 536_870_912 })
})
