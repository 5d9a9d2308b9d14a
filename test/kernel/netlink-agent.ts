import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '../helpers/hosts.js';
import { RpcClient, type RpcError } from '../../src/sim/rpc.js';

/** Parent side of netlink-ns-agent.ts: call driver methods inside a namespace, collect events. */
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));

export type AgentError = RpcError;

export class Agent extends RpcClient {
  stderr = '';

  constructor(host: Host) {
    const child = host.spawn(process.execPath, [...loader, path.join(here, 'netlink-ns-agent.ts')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
    });
    super(child, { debug: process.env.DUOCELL_AGENT_DEBUG !== undefined });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }
}
