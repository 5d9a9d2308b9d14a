/**
 * JSON schemas of the API: requests are validated with them, responses serialised with them,
 * and the OpenAPI document (/api/v1/openapi.json) is generated from them. Shared shapes are
 * registered once with an $id and referenced as `{ $ref: 'Name#' }`.
 */

const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;
const str = (maxLength = 256) => ({ type: 'string', maxLength }) as const;
const num = { type: 'number' } as const;
const access = { type: 'string', enum: ['cellular', 'wlan'] } as const;
const endpoint = {
  type: 'object',
  required: ['address', 'port'],
  properties: { address: str(64), port: int(0, 65535) },
} as const;
const isoTime = { type: 'string', format: 'date-time' } as const;

export const ErrorSchema = {
  $id: 'Error',
  type: 'object',
  description: 'Every error: a stable code (see docs/errors.md) and a message.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', pattern: '^DC_[A-Z0-9_]+$' },
        message: { type: 'string' },
        fields: {
          type: 'array',
          description: 'Validation failures, one per field (path in dotted form).',
          items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } },
        },
        retryAfterS: { type: 'integer' },
      },
    },
  },
} as const;

export const PolicySpecSchema = {
  $id: 'PolicySpec',
  type: 'object',
  additionalProperties: false,
  required: ['limits', 'allowedAccess', 'allowedNetworks', 'steering'],
  properties: {
    limits: {
      type: 'object',
      additionalProperties: false,
      required: ['maxSessions', 'maxSubflows', 'maxSessionsPerServer'],
      properties: {
        maxSessions: { ...int(1, 10000), description: 'concurrent M-sessions from one UE' },
        maxSubflows: { ...int(1, 8), description: 'subflows per M-session' },
        maxSessionsPerServer: { ...int(1, 100000), description: 'concurrent M-sessions to one N-server' },
      },
    },
    allowedAccess: { type: 'array', items: access, minItems: 1, maxItems: 2, uniqueItems: true },
    allowedNetworks: {
      type: 'array',
      maxItems: 64,
      description: 'CIDR prefixes from which subflows may join; empty means any',
      items: { ...str(50), format: 'cidr' },
    },
    steering: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'primary', 'ratio'],
      properties: {
        mode: { type: 'string', enum: ['active-standby', 'priority', 'ratio', 'smallest-delay'] },
        primary: access,
        ratio: {
          type: 'object',
          additionalProperties: false,
          required: ['cellular', 'wlan'],
          description: 'percent of traffic per path; the two sum to 100',
          properties: { cellular: int(0, 100), wlan: int(0, 100) },
        },
      },
    },
    udpMode: { type: 'string', enum: ['active-standby', 'priority', 'smallest-delay', 'load-balancing'], description: 'UDP steering mode per flow (absent: the MPTCP mode\'s counterpart)' },
    quic: { type: 'string', enum: ['allow', 'block'], description: 'block: UDP/443 answered with ICMP port-unreachable, so QUIC falls back to TCP' },
  },
} as const;

export const SubscriberInputSchema = {
  $id: 'SubscriberInput',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'identifiers'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64 },
    enabled: { type: 'boolean', default: true },
    identifiers: {
      type: 'object',
      additionalProperties: false,
      required: ['addresses'],
      properties: {
        addresses: { type: 'array', maxItems: 64, items: { ...str(50), format: 'ip-prefix' }, description: 'IPv4/IPv6 addresses or prefixes' },
        macs: { type: 'array', maxItems: 16, items: { ...str(17), format: 'mac' }, default: [] },
      },
    },
    policy: {
      description: "the subscriber's own policy; null: the cell default applies",
      anyOf: [{ $ref: 'PolicySpec#' }, { type: 'null' }],
      default: null,
    },
  },
} as const;

export const SubscriberSchema = {
  $id: 'Subscriber',
  type: 'object',
  required: ['id', 'name', 'enabled', 'identifiers', 'policy', 'createdAt', 'updatedAt'],
  properties: {
    id: str(64),
    name: str(64),
    enabled: { type: 'boolean' },
    identifiers: {
      type: 'object',
      properties: { addresses: { type: 'array', items: { type: 'string' } }, macs: { type: 'array', items: { type: 'string' } } },
    },
    policy: { anyOf: [{ $ref: 'PolicySpec#' }, { type: 'null' }] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

export const PolicySchema = {
  $id: 'Policy',
  type: 'object',
  required: ['version', 'updatedAt', 'defaults'],
  properties: {
    version: { type: ['integer', 'null'], description: 'OTA bundle version the policy came from' },
    updatedAt: { type: 'string' },
    defaults: { $ref: 'PolicySpec#' },
  },
} as const;

export const SessionSchema = {
  $id: 'Session',
  type: 'object',
  properties: {
    id: { type: 'string' },
    subscriber: { type: 'string' },
    proxy: { type: 'string', description: 'the candidate proxy chosen for this session' },
    sni: { type: 'string', description: 'the TLS server name the transparent front read from the ClientHello (only where an SNI rule applies)' },
    grant: {
      type: 'object',
      description: 'limits and path ratio in force for this session',
      properties: {
        subscriber: { type: ['string', 'null'] },
        policy: { type: 'string' },
        maxSessionsPerUe: { type: 'integer' },
        maxSessionsPerNServer: { type: 'integer' },
        maxSubflowsPerSession: { type: 'integer' },
        steeringMode: { type: 'string', enum: ['active-standby', 'priority', 'ratio', 'smallest-delay'] },
        ratio: { type: 'object', properties: { cellular: { type: 'integer' }, wlan: { type: 'integer' } } },
      },
    },
    front: { type: 'string', enum: ['transparent', 'explicit', 'convert', 'socks5'] },
    tokens: { type: 'object', description: 'MPTCP tokens of the client and server sides (the keys of GET /api/v1/pm connections)', properties: { client: { type: 'integer' }, server: { type: 'integer' } } },
    client: { type: 'object', properties: { ...endpoint.properties, mptcp: { type: 'boolean' } } },
    server: { type: 'object', properties: { ...endpoint.properties, mptcp: { type: 'boolean' } } },
    combination: { type: 'string', enum: ['M-N', 'M-M', 'N-N', 'N-M'] },
    action: { type: 'string' },
    startedAt: { type: 'string' },
    bytes: { type: 'object', properties: { up: num, down: num } },
    subflows: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          side: { type: 'string', enum: ['client', 'server'] },
          id: { type: 'integer' },
          local: endpoint,
          remote: endpoint,
          access: { type: 'string', enum: ['cellular', 'wlan', 'lan', 'unknown'] },
          bytesSent: num,
          bytesReceived: num,
          rttUs: num,
        },
      },
    },
  },
} as const;

export const PathSchema = {
  $id: 'Path',
  type: 'object',
  properties: {
    name: { type: 'string' },
    access,
    interface: { type: 'string' },
    state: { type: 'string', enum: ['up', 'down'] },
    addresses: { type: 'array', items: { type: 'string' } },
    signal: {
      type: 'object',
      properties: { rssiDbm: num, rsrpDbm: num, rsrq: num, sinr: num, ssid: { type: 'string' }, bssid: { type: 'string' }, txBitrateMbps: num, bars: int(0, 4) },
    },
    bytesTx: num,
    bytesRx: num,
    rttMs: num,
    measure: {
      type: 'object',
      description: 'active probes from this path (sliding window: median, p95, jitter, loss) and the passive RTT of its MPTCP subflows',
      properties: {
        target: { type: 'string' }, samples: num, rttMedianMs: num, rttP95Ms: num, rttMinMs: num,
        jitterMs: num, lossPct: num, passiveRttMs: num, passiveSubflows: num,
      },
    },
    throughput: {
      type: 'object',
      description: 'bits per second over the last sample interval',
      properties: { txBps: num, rxBps: num },
    },
  },
} as const;

export const HealthSchema = {
  $id: 'Health',
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'] },
    preset: { type: 'string', enum: ['cell', 'concentrator'] },
    version: { type: 'string' },
    uptimeS: num,
    checks: { type: 'object', additionalProperties: { type: 'boolean' } },
    anycast: {
      type: 'object',
      description: 'a concentrator in an anycast pool: its announcement, checks and BIRD sessions',
      properties: {
        protocol: { type: 'string' },
        state: { type: 'string', enum: ['starting', 'announced', 'withdrawn', 'draining'] },
        healthy: { type: 'boolean' },
        checks: { type: 'object', additionalProperties: { type: 'boolean' } },
        bgp: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' }, info: { type: 'string' } } } },
        bfd: { type: 'array', items: { type: 'object', properties: { peer: { type: 'string' }, interface: { type: 'string' }, state: { type: 'string' } } } },
        problems: { type: 'array', items: { type: 'string' } },
        checkedAt: { type: ['string', 'null'] },
      },
    },
  },
} as const;

export const ModemSchema = {
  $id: 'Modem',
  type: 'object',
  properties: {
    present: { type: 'boolean' },
    state: { type: 'string' },
    model: { type: 'string' },
    imei: { type: 'string' },
    sim: { type: 'string' },
    operator: { type: 'string' },
    rat: { type: 'string' },
    band: { type: 'string' },
    rssiDbm: num,
    rsrp: num,
    rsrq: num,
    sinr: num,
    apn: { type: 'string' },
    addresses: { type: 'array', items: { type: 'string' } },
    warning: { type: 'string' },
  },
} as const;

export const WlanSchema = {
  $id: 'Wlan',
  type: 'object',
  properties: {
    present: { type: 'boolean' },
    interface: { type: 'string' },
    mode: { type: 'string' },
    state: { type: 'string' },
    ssid: { type: 'string' },
    bssid: { type: 'string' },
    frequencyMhz: num,
    channel: { type: 'integer' },
    signalDbm: num,
    txBitrateMbps: num,
    rxBitrateMbps: num,
    stations: { type: 'integer' },
  },
} as const;

export const ProxySchema = {
  $id: 'Proxy',
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    port: int(0, 65535),
    protocol: { type: 'string', enum: ['convert', 'socks5'] },
    priority: num,
    healthy: { type: 'boolean' },
    rttMs: num,
    name: { type: 'string' },
    location: { type: 'string' },
    type: { type: 'string', enum: ['on-path', 'off-path'] },
    weight: num,
    enabled: { type: 'boolean' },
    socks5: { type: ['string', 'null'] },
    auth: { type: ['object', 'null'], additionalProperties: false, properties: { username: { type: 'string' } } },
    apps: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, ports: { type: 'array', items: int(1, 65535) }, prefixes: { type: 'array', items: { type: 'string' } }, sni: { type: 'array', items: { type: 'string' } } } },
    },
    policies: { type: 'array', items: { type: 'string' } },
    sessions: num,
    probeFailures: num,
    sessionFailures: num,
    lastError: { type: ['string', 'null'] },
  },
} as const;

export const OtaSchema = {
  $id: 'Ota',
  type: 'object',
  properties: {
    version: { type: ['integer', 'null'] },
    previousVersion: { type: ['integer', 'null'] },
    appliedAt: { type: ['string', 'null'] },
    lastCheck: { type: ['string', 'null'] },
    lastError: {
      anyOf: [{ type: 'null' }, { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } }],
    },
    source: { type: ['string', 'null'] },
  },
} as const;

export const ThroughputSampleSchema = {
  $id: 'ThroughputSample',
  type: 'object',
  description: 'one sample: time (ms since epoch) and bits per second per path and in total',
  properties: {
    t: num,
    total: { type: 'object', properties: { txBps: num, rxBps: num } },
    paths: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { txBps: num, rxBps: num, state: { type: 'string' }, access } },
    },
  },
} as const;

export const SystemSchema = {
  $id: 'System',
  type: 'object',
  properties: {
    cpuTempC: { type: ['number', 'null'] },
    load: { type: 'array', items: num, description: '1, 5, 15 minute load averages' },
    cpuPercent: { type: ['number', 'null'] },
    cores: { type: 'integer' },
    memory: { type: 'object', properties: { totalBytes: num, usedBytes: num, availableBytes: num } },
    disks: {
      type: 'array',
      items: { type: 'object', properties: { mount: { type: 'string' }, sizeBytes: num, usedBytes: num, usePercent: num } },
    },
    uptimeS: num,
    processUptimeS: num,
    rssBytes: num,
  },
} as const;

export const AuthStateSchema = {
  $id: 'AuthState',
  type: 'object',
  required: ['setUp', 'loggedIn', 'csrf', 'firstBootSecretRequired'],
  properties: {
    setUp: { type: 'boolean', description: 'an admin password is set' },
    loggedIn: { type: 'boolean' },
    firstBootSecretRequired: { type: 'boolean' },
    csrf: { type: 'string', description: 'the token to send as x-csrf-token on the next mutating call' },
  },
} as const;

export const UdpSchema = {
  $id: 'Udp',
  type: 'object',
  description: 'UDP steering per flow (GET /api/v1/udp); the counters count since start, across ruleset swaps',
  required: ['enabled', 'flows'],
  properties: {
    enabled: { type: 'boolean' },
    mode: { type: 'string' },
    flows: {
      type: 'array',
      items: {
        type: 'object',
        required: ['src', 'sport', 'dst', 'dport', 'uplink', 'bytes', 'packets'],
        properties: { src: { type: 'string' }, sport: { type: 'integer' }, dst: { type: 'string' }, dport: { type: 'integer' }, uplink: { type: 'string' }, bytes: { type: 'integer' }, packets: { type: 'integer' } },
      },
    },
    moves: { type: 'integer', description: 'times flows were moved off an uplink' },
    flowsMoved: { type: 'integer', description: 'flows moved off an uplink' },
    capDrops: { type: 'object', additionalProperties: { type: 'integer' }, description: 'new flows refused by the per-device flow cap, by source address' },
    quicBlocked: { type: 'integer', description: 'UDP/443 packets answered with ICMP port-unreachable (quic: block)' },
    quicLimited: { type: 'integer', description: 'UDP/443 packets of quic: block dropped without a reject: over the per-source or total reject limit' },
  },
} as const;

export const SHARED_SCHEMAS = [
  ErrorSchema,
  PolicySpecSchema,
  SubscriberInputSchema,
  SubscriberSchema,
  PolicySchema,
  SessionSchema,
  PathSchema,
  HealthSchema,
  ModemSchema,
  WlanSchema,
  ProxySchema,
  OtaSchema,
  ThroughputSampleSchema,
  SystemSchema,
  AuthStateSchema,
  UdpSchema,
] as const;

/** Error responses every route may give, for the OpenAPI document and the serialiser. */
export function errors(...statuses: number[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of statuses) out[String(s)] = { $ref: 'Error#' };
  return out;
}
