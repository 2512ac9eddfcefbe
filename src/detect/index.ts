export { Detector, DEFAULT_DETECTOR, type DetectorOptions, type DetectorDeps } from './detector.js';
export { restoreDetector } from './restore.js';
export { ALONE, checkKey, hostKey, ownerKeyOf, serviceKey, type Ownership } from './ownership.js';
export { targetKey } from './target.js';
export { DEFAULT_PHI, HeartbeatHistory, phi, type PhiOptions } from './phi.js';
export { ErrorRateMonitor, DEFAULT_ERROR_RATE, type ErrorRateOptions, type CountSharing } from './error-rate.js';
export { BucketCountsSchema, type BucketCounts } from './span-counts.js';
export { ResourceMonitor, DEFAULT_RESOURCE, type ResourceOptions } from './resource.js';
