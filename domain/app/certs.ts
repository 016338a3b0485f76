import Type, { type Static } from 'typebox'
import { DomainName } from './events.js'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { CERT_HOST_NAME_PATTERN } from '../host/names.js'
import { AppName, Strict } from '../schema.js'

/** A certificate's name, unique within its app: lower-case letters, digits and dashes, 1-50 characters. */
export const CertName = Type.String({ pattern: '^[a-z]([a-z0-9-]{0,48}[a-z0-9])?$' })
/** A name a certificate is for: a host name, or a wildcard over one label (`*.example.com`). */
export const CertHostName = Type.String({ pattern: CERT_HOST_NAME_PATTERN })
const Timestamp = Type.String({ minLength: 20, maxLength: 30 })

export const CertAddedSchema = Type.Object(
  {
    app: AppName,
    name: CertName,
    /** The leaf's CN, '' when it has none. */
    commonName: Type.Union([CertHostName, Type.Literal('')]),
    sans: Type.Array(CertHostName, { maxItems: 1000 }),
    notBefore: Timestamp,
    notAfter: Timestamp,
    /** SHA-256 of the leaf, `AB:CD:...`. */
    fingerprint: Type.String({ pattern: '^[0-9A-F]{2}(:[0-9A-F]{2}){31}$' }),
    /** The PEM chain, leaf first. */
    certificate: Type.String({ minLength: 1, maxLength: 64 * 1024 }),
    /** The private key, PKCS#8 PEM: a secret (redacted by the event log, never answered by the API). */
    privateKey: Type.String({ minLength: 1, maxLength: 16 * 1024 }),
  },
  Strict,
)
export type CertAddedData = Static<typeof CertAddedSchema>

export const CertAttachedSchema = Type.Object({ app: AppName, name: CertName, domain: DomainName }, Strict)
export type CertAttachedData = Static<typeof CertAttachedSchema>

export const CertDetachedSchema = Type.Object({ app: AppName, name: CertName, domain: DomainName }, Strict)
export type CertDetachedData = Static<typeof CertDetachedSchema>

export const CertRemovedSchema = Type.Object({ app: AppName, name: CertName }, Strict)
export type CertRemovedData = Static<typeof CertRemovedSchema>

/** A certificate event of an `app.<name>` stream, newest version. */
export type CertEvent =
  | RecordedEvent<'CertAdded', CertAddedData>
  | RecordedEvent<'CertAttached', CertAttachedData>
  | RecordedEvent<'CertDetached', CertDetachedData>
  | RecordedEvent<'CertRemoved', CertRemovedData>

/**
 * TLS certificate events. They live on the app's own stream (`app.<name>`, beside `DomainAdded`), so
 * that attaching checks the app's domains and access in one decision with no cross-stream race, and
 * destroying the app drops its certificates.
 */
export const certEvents: EventDefinition[] = [
  {
    type: 'CertAdded',
    version: 1,
    stream: 'app',
    description: 'A TLS certificate chain and its private key were added to an app (the events API shows the key redacted).',
    schema: CertAddedSchema,
  },
  {
    type: 'CertAttached',
    version: 1,
    stream: 'app',
    description: "The router serves HTTPS for one of the app's domains with this certificate (replacing any other for that domain).",
    schema: CertAttachedSchema,
  },
  {
    type: 'CertDetached',
    version: 1,
    stream: 'app',
    description: 'The router no longer serves HTTPS for the domain with this certificate.',
    schema: CertDetachedSchema,
  },
  {
    type: 'CertRemoved',
    version: 1,
    stream: 'app',
    description: 'A certificate was removed from an app, and detached from every domain it served.',
    schema: CertRemovedSchema,
  },
]
