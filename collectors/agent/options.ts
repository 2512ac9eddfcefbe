/** The command line of `faultline agent`: flags and the help text. */
import { parseArgs } from 'node:util';
import type { Overrides } from './config.js';

export const HELP = `Usage: faultline agent [options]

Carries out faultline's supervisor actions on this host. It runs the programs in its config through
faultline run (which reports their heartbeats and exits), listens for supervisor-action webhooks on
POST /actions, verifies their Standard Webhooks signatures and timestamps (forged or stale: 401; a
webhook-id already taken on: 200 with the earlier outcome, not carried out again), restarts, stops or
starts the programs and systemd units the action names (202 at once, carried out in the background), and
reports each result to faultline (POST /api/v1/actions/<id>/result), retrying while faultline is away.

Options (each overrides the config file's field):
  -c, --config FILE         agent.yaml: programs, units, secrets (default: $FAULTLINE_AGENT_CONFIG)
      --listen HOST:PORT    where POST /actions and GET /healthz listen (default 127.0.0.1:9090; port 0 picks one)
      --faultline URL       faultline's HTTP address, for results and check pings (default http://127.0.0.1:8080)
      --otlp-endpoint URL   where the programs' telemetry goes (default: $OTEL_EXPORTER_OTLP_ENDPOINT,
                            else http://127.0.0.1:4318)
      --token T             bearer token for faultline's API (default: $FAULTLINE_TOKEN)
      --secret whsec_…      a webhook secret, the endpoint's in faultline's config; repeat it during a rotation
                            (default: $FAULTLINE_AGENT_SECRET, comma-separated). Required.
      --tolerance DUR       how far a webhook's timestamp may be from this host's clock (default 5m)
  -h, --help                show this help

agent.yaml:
  listen: 127.0.0.1:9090
  faultline: http://127.0.0.1:8080
  secrets: [whsec_…]
  programs:                  # run through faultline run
    - name: api
      service: api           # what the supervision tree's matchers select
      instance: api-1        # default <host>/<name>
      command: [node, server.js, --port, "3000"]
      cwd: /srv/api
      env: { NODE_ENV: production }
      restart: no            # faultline run's own --restart: no (default: faultline's supervisor decides) | on-failure | always
      run_args: [--interval, 1s]
  units:                     # acted on with systemctl restart|stop|start
    - { name: nginx.service, service: nginx }

Durations: 500ms, 30s, 5m, 1h. Exit status: 0 after SIGTERM/SIGINT (programs stopped first), 2 for a bad
command line or configuration, 1 when it cannot listen.
`;

export class UsageError extends Error {}

/** Parses the flags; 'help' for --help. Throws UsageError. */
export function parseAgentArgs(argv: string[]): Overrides | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string' },
        faultline: { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        token: { type: 'string' },
        secret: { type: 'string', multiple: true },
        tolerance: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    const m = /Unknown option '([^']+)'/.exec((err as Error).message);
    throw new UsageError(m ? `unknown option "${m[1]}"` : (err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  return { config: v.config, listen: v.listen, faultline: v.faultline, otlp_endpoint: v['otlp-endpoint'], token: v.token, secrets: v.secret, tolerance: v.tolerance };
}
