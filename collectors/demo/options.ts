/** The command line of `npm run demo`: flags, defaults (ports apart from a normal `npm start`), help. */
import { parseArgs } from 'node:util';

export const HELP = `Usage: npm run demo [-- options]

Starts faultline with the embedded store and a small fleet of demo services (an API, the payments service
it depends on, a worker, a cache, two gateways on a pretend second host, and a cron job) supervised by
faultline agent. On a schedule they crash, leak memory until killed, hang, lose their host, crash-loop,
fail and miss cron runs, and fail because their dependency fails: within two minutes faultline shows every
fault kind, grouped signatures, supervisor restarts and an escalation. Ctrl-C stops everything.

Options:
      --speed N          run the schedule N times faster (default 1, or $FAULTLINE_DEMO_SPEED; at most 4)
      --http-port P      faultline's HTTP API, ping API and dashboard (default 8180)
      --otlp-port P      faultline's OTLP/HTTP receiver (default 4418)
      --grpc-port P      faultline's OTLP/gRPC receiver (default 4417)
      --agent-port P     faultline agent's webhook listener (default 9190)
      --people-port P    the demo's stand-in for people: a webhook receiver printing notifications (default 9191)
      --payments-port P  the demo payments service (default 9192)
      --dir DIR          where the store, the configs and the logs go (default: a new temporary folder,
                         removed at the end); an existing DIR is kept, and must not hold another run's store
  -h, --help             show this help

Ports are on 127.0.0.1; 0 picks a free one.
`;

export class UsageError extends Error {}

export interface DemoOptions {
  speed: number;
  httpPort: number;
  otlpPort: number;
  grpcPort: number;
  agentPort: number;
  peoplePort: number;
  paymentsPort: number;
  dir?: string;
}

const PORTS = {
  'http-port': 8180,
  'otlp-port': 4418,
  'grpc-port': 4417,
  'agent-port': 9190,
  'people-port': 9191,
  'payments-port': 9192,
} as const;

function port(text: string | undefined, flag: keyof typeof PORTS): number {
  if (text === undefined) return PORTS[flag];
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UsageError(`--${flag}: "${text}" is not a port (0-65535)`);
  return Number(text);
}

/** Parses the flags; 'help' for --help; throws UsageError for a bad command line. */
export function parseDemoArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): DemoOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        speed: { type: 'string' },
        'http-port': { type: 'string' },
        'otlp-port': { type: 'string' },
        'grpc-port': { type: 'string' },
        'agent-port': { type: 'string' },
        'people-port': { type: 'string' },
        'payments-port': { type: 'string' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    const unknown = /Unknown option '([^']+)'/.exec((err as Error).message);
    throw new UsageError(unknown ? `unknown option "${unknown[1]}"` : (err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const speedText = v.speed ?? env.FAULTLINE_DEMO_SPEED ?? '1';
  const speed = Number(speedText);
  // Detection is not sped up: past 4× the faults of the story would overlap and blur.
  if (!/^\d+(\.\d+)?$/.test(speedText) || speed < 0.1 || speed > 4) throw new UsageError(`--speed: "${speedText}" is not a number between 0.1 and 4`);
  const options: DemoOptions = {
    speed,
    httpPort: port(v['http-port'], 'http-port'),
    otlpPort: port(v['otlp-port'], 'otlp-port'),
    grpcPort: port(v['grpc-port'], 'grpc-port'),
    agentPort: port(v['agent-port'], 'agent-port'),
    peoplePort: port(v['people-port'], 'people-port'),
    paymentsPort: port(v['payments-port'], 'payments-port'),
    dir: v.dir,
  };
  return options;
}
