export { publisher } from './service.js'
export { Publisher, accepts, publishedPort, type PublisherOptions } from './publisher.js'
export { classifyDeath } from './model.js'
