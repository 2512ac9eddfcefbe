import { z } from 'zod';

const ms = z.number().int().min(1);

/**
 * `cluster:` — several faultline instances sharing one store (README "Running more than one instance").
 * Absent: one instance decides everything, as always.
 */
export const ClusterSchema = z
  .object({
    /** This instance's name in the cluster; default: the one kept in `<data_dir>/instance-id`, made once. */
    instance_id: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'letters, digits and "_ . : @ -", at most 128')
      .optional(),
    /** How people and other instances reach this one's HTTP API (shown by /api/v1/cluster); default http://host:port. */
    address: z.string().max(500).optional(),
    /** How often this instance writes its heartbeat to the store. */
    heartbeat_ms: ms.min(100).default(1000),
    /** An instance whose newest heartbeat is older than this is dead: its targets go to the others. */
    lease_ms: ms.default(3000),
    /** How often this instance reads what other instances stored (evidence and faults). */
    tail_ms: ms.min(50).default(500),
  })
  .strict()
  .refine((c) => c.lease_ms >= 2 * c.heartbeat_ms, {
    path: ['lease_ms'],
    message: 'lease_ms must be at least twice heartbeat_ms (one late heartbeat must not cost an instance its targets)',
  });

export type ClusterConfig = z.infer<typeof ClusterSchema>;
