/**
 * More than one instance: membership through the store, ownership of targets by rendezvous hashing over
 * the live instances, the tail of what other instances stored, and hand-over (README "Running more than
 * one instance").
 */
export { Cluster, instanceId, type ClusterParts } from './cluster.js';
export { ClusterSchema, type ClusterConfig } from './config.js';
export { Membership, type InstanceInfo, type Health, type MembershipChange } from './membership.js';
export { ownerOf, weight } from './rendezvous.js';
export { StoreTail, type CheckChanges, type PauseChange } from './tail.js';
export { followCheckChanges } from './checks.js';
export { clusterRoutes, clusterView, ClusterView, InstanceView } from './routes.js';
