/** The chaos scenarios, in the order a full run takes them. */
import type { Scenario } from '../harness.js';
import { hungWebhook } from './hung-webhook.js';
import { kill9 } from './kill9.js';
import { overload } from './overload.js';
import { partition } from './partition.js';
import { storeOutage } from './store-outage.js';

export const SCENARIOS: Scenario[] = [kill9, storeOutage, partition, overload, hungWebhook];
