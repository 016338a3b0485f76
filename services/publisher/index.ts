export { publisher } from './service.js'
export { Publisher, accepts, publishedPort, type PublisherOptions } from './publisher.js'
export { classifyDeath, identityOf, LABELS, slotOf, type ContainerIdentity } from './model.js'
