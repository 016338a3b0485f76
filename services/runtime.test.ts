import t from 'tap'
import { selectServices, type ServiceDefinition } from './runtime.js'

const svc = (name: string): ServiceDefinition => ({ name, description: name, start: async () => ({ stop: async () => {} }) })
const known = [svc('projector'), svc('controller')]

t.test('no --only runs every service', async (t) => {
  t.same(
    selectServices(['node', 'main.js'], known).map((s) => s.name),
    ['projector', 'controller'],
  )
})

t.test('--only picks a subset, in start order', async (t) => {
  t.same(
    selectServices(['--only', 'controller,projector'], known).map((s) => s.name),
    ['projector', 'controller'],
  )
  t.same(
    selectServices(['--only=controller'], known).map((s) => s.name),
    ['controller'],
  )
})

t.test('--only with an unknown or missing name is a clear error', async (t) => {
  t.throws(() => selectServices(['--only', 'router'], known), /unknown service router; known: projector, controller/)
  t.throws(() => selectServices(['--only'], known), /--only needs a list/)
})

t.test('--except runs every service but those (the builder in a process of its own)', async (t) => {
  const three = [...known, svc('builder')]
  t.same(
    selectServices(['--except', 'builder'], three).map((s) => s.name),
    ['projector', 'controller'],
  )
  t.same(
    selectServices(['--except=projector,builder'], three).map((s) => s.name),
    ['controller'],
  )
  t.throws(() => selectServices(['--except', 'nope'], three), /unknown service nope/)
})
