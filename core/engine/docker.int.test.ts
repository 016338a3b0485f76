import t from 'tap'
import { DockerEngine } from './docker.js'
import { engineContract } from './engine.contract.js'

/** The test engine and registry `make test` names. */
function testEnv(): { host: string; registry: string } {
  const host = process.env.WHARF_TEST_DOCKER_HOST
  const registry = process.env.WHARF_TEST_REGISTRY
  if (!host || !registry) throw new Error('WHARF_TEST_DOCKER_HOST / WHARF_TEST_REGISTRY are not set: run integration tests through `make test`')
  return { host, registry }
}

await engineContract(t, 'DockerEngine', {
  async create() {
    const { host, registry } = testEnv()
    const login = { serveraddress: registry, username: process.env.WHARF_TEST_REGISTRY_USER ?? '', password: process.env.WHARF_TEST_REGISTRY_PASSWORD ?? '' }
    return { engine: DockerEngine.at(host, login), image: 'busybox:latest', registry }
  },
  ran() {},
})
