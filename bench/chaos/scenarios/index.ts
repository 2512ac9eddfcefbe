/** The chaos scenarios, in the order a full run takes them. */
import type { Scenario } from '../harness.js';
import { clusterKill9 } from './cluster-kill9.js';
import { hungWebhook } from './hung-webhook.js';
import { kill9 } from './kill9.js';
import { overload } from './overload.js';
import { rollingRestart } from './rolling-restart.js';
import { partition } from './partition.js';
import { splitPair } from './split-pair.js';
import { storeOutage } from './store-outage.js';

export const SCENARIOS: Scenario[] = [kill9, storeOutage, partition, overload, hungWebhook, clusterKill9, rollingRestart, splitPair];
