export { BUCKETS, type BucketName, type ObjectInfo, type ObjectStore, type PutOptions } from './objectstore.js'
export { MemoryObjectStore } from './memory.js'
export { s3Client, S3ObjectStore, type S3ObjectStoreOptions } from './s3.js'
