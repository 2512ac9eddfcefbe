/**
 * `node --import faultline/collector/register app.js`: starts the collector before the application, from
 * the standard OTEL_* variables (see settings.ts). OTEL_SDK_DISABLED=true leaves it off. It never stops the
 * application: a collector that cannot start says why on stderr and the application runs unwatched.
 */
import { start } from './index.js';

if (!/^true$/i.test(process.env.OTEL_SDK_DISABLED?.trim() ?? '')) {
  try {
    start();
  } catch (err) {
    process.stderr.write(`faultline collector: not started: ${(err as Error).message}\n`);
  }
}
