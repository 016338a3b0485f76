export { BUCKETS, type BucketName, type ObjectInfo, type ObjectStore, type ObjectStores, type PutOptions } from './objectstore.js'
export { MemoryObjectStore } from './memory.js'
export { ensureBuckets, s3Client, S3ObjectStore, s3ObjectStores, type S3ObjectStoreOptions } from './s3.js'
