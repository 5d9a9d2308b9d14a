import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { DuocellError } from '../core/errors.js';
import { delaylineArgs, delaylinePath, isEmulated, validateLinkShape, type LinkShape } from './links.js';

/**
 * Test hosts: network namespaces joined by veth pairs, shaped with tbf (this kernel has no
 * netem), with per-source routing for multi-homed hosts. Used by the tests, the benchmarks and
 * the simulated board. Every command is run with an argument vector (never a shell).
 *
 * A Topology remembers what it created and destroy() removes all of it; deleting a namespace
 * also deletes the veth ends inside it and ends nothing else.
 *
 * A link with a delay, jitter or loss (src/sim/links.ts) runs through the topology's middle
 * namespace `${prefix}-wire`, where one build/delayline process per link forwards its frames.
 */
const run = promisify(execFile);

export async function sh(cmd: string, args: readonly string[], opts: { allowFail?: boolean; input?: string } = {}): Promise<string> {
  try {
    const pending = run(cmd, args as string[], { maxBuffer: 16 << 20 });
    // execFile takes no input option: write it to the child's stdin (and close it, so `nft -f -` ends)
    if (opts.input !== undefined) pending.child.stdin?.end(opts.input);
    const r = await pending;
    return r.stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    if (opts.allowFail === true) return err.stdout ?? '';
    throw new DuocellError('DC_NETNS_COMMAND', `${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/**
 * Addresses and shape of a link. The rate (rateMbit, or rateAtoB / rateBtoA for one direction,
 * Mbit/s) is a tbf at the sender; delayMs / jitterMs / lossPct (and per-direction aToB / bToA)
 * put the delay line in the middle (see src/sim/links.ts); without them the link is a plain veth.
 */
export interface LinkOptions extends LinkShape {
  /** Addresses with prefix length, e.g. '10.1.0.1/24', 'fd00:1::1/64'. */
  a?: string[];
  b?: string[];
  mtu?: number;
}

/** Starts a link's delay line in the wire namespace (`name` is unique per link). */
export type WireSpawner = (wire: Host, name: string, argv: string[]) => ChildProcess;

export class Host {
  constructor(
    readonly topo: Topology,
    readonly ns: string,
  ) {}

  /** Run a command in this namespace and return its stdout. */
  exec(cmd: string, args: readonly string[] = [], opts: { allowFail?: boolean } = {}): Promise<string> {
    return sh('ip', ['netns', 'exec', this.ns, cmd, ...args], opts);
  }

  ip(...args: string[]): Promise<string> {
    return sh('ip', ['-n', this.ns, ...args]);
  }

  sysctl(key: string, value: string | number): Promise<string> {
    return this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Start a long-running process in this namespace; it is killed by Topology.destroy(). */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.topo.track(child);
    return child;
  }

  /** Per-source routing: traffic from `address` leaves through `dev` (via `gateway`) using table `table`. */
  async sourceRoute(address: string, dev: string, gateway: string | undefined, table: number): Promise<void> {
    const v6 = address.includes(':');
    const fam = v6 ? '-6' : '-4';
    const net = v6 ? '::/0' : '0.0.0.0/0';
    await this.ip(fam, 'rule', 'add', 'from', address, 'table', String(table), 'priority', String(1000 + table));
    if (gateway !== undefined) {
      await this.ip(fam, 'route', 'replace', net, 'via', gateway, 'dev', dev, 'table', String(table));
    } else {
      await this.ip(fam, 'route', 'replace', net, 'dev', dev, 'table', String(table));
    }
  }

  async route(dst: string, via: string, dev?: string, extra: string[] = []): Promise<void> {
    const fam = via.includes(':') ? '-6' : '-4';
    await this.ip(fam, 'route', 'replace', dst, 'via', via, ...(dev === undefined ? [] : ['dev', dev]), ...extra);
  }

  async linkSet(dev: string, state: 'up' | 'down'): Promise<void> {
    await this.ip('link', 'set', 'dev', dev, state);
  }

  /** Add an MPTCP endpoint with the kernel path manager (ip mptcp). */
  async mptcpEndpoint(address: string, dev: string, flags: string[] = ['subflow']): Promise<void> {
    await this.ip('mptcp', 'endpoint', 'add', address, 'dev', dev, ...flags);
  }

  async mptcpLimits(subflows: number, addAddrAccepted: number): Promise<void> {
    await this.ip('mptcp', 'limits', 'set', 'subflows', String(subflows), 'add_addr_accepted', String(addAddrAccepted));
  }
}

function tbfArgs(rateMbit: number): string[] {
  // burst must hold at least one timer tick of data; latency bounds the queue.
  const burstBytes = Math.max(32 * 1024, Math.ceil((rateMbit * 1e6) / 8 / 100));
  return ['tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '40ms'];
}

export class Topology {
  readonly hosts: Host[] = [];
  readonly #children = new Set<ChildProcess>();
  #destroyed = false;
  #wire: Host | undefined;
  #wireLinks = 0;
  readonly #spawnWire: WireSpawner;
  /** The delay lines started for emulated links, by link name (`${aHost}/${aIf}`). */
  readonly delayLines = new Map<string, ChildProcess>();

  /**
   * `prefix` must be unique per test file (tap runs files in parallel). `spawnWire` starts the
   * delay lines; by default they are children of this process (killed by destroy(), and they
   * end with it).
   */
  constructor(
    readonly prefix: string,
    opts: { spawnWire?: WireSpawner } = {},
  ) {
    this.#spawnWire = opts.spawnWire ?? ((wire, _name, argv) => wire.spawn(argv[0]!, [...argv.slice(1), '--die-with-parent']));
  }

  /** The middle namespace of emulated links (made on first use; it has no addresses, no IPv6). */
  async wire(): Promise<Host> {
    if (this.#wire !== undefined) return this.#wire;
    const ns = this.nsName('wire');
    await sh('ip', ['netns', 'del', ns], { allowFail: true });
    await sh('ip', ['netns', 'add', ns]);
    const h = new Host(this, ns);
    this.#wire = h;
    await h.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
    await h.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
    return h;
  }

  track(child: ChildProcess): void {
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
  }

  nsName(name: string): string {
    return `${this.prefix}-${name}`;
  }

  async host(name: string, opts: { forward?: boolean; mptcp?: boolean } = {}): Promise<Host> {
    const ns = this.nsName(name);
    await sh('ip', ['netns', 'del', ns], { allowFail: true });
    await sh('ip', ['netns', 'add', ns]);
    const h = new Host(this, ns);
    this.hosts.push(h);
    await h.ip('link', 'set', 'lo', 'up');
    await h.sysctl('net.mptcp.enabled', opts.mptcp === false ? 0 : 1);
    if (opts.forward === true) {
      await h.sysctl('net.ipv4.ip_forward', 1);
      await h.sysctl('net.ipv6.conf.all.forwarding', 1);
    }
    // Do not answer ARP for addresses of other interfaces: keeps multi-homed paths apart.
    await h.sysctl('net.ipv4.conf.all.arp_ignore', 1);
    await h.sysctl('net.ipv4.conf.all.rp_filter', 0);
    // Keep IPv6 addresses when a link goes down (as IPv4 does), so a link can come back.
    await h.sysctl('net.ipv6.conf.all.keep_addr_on_down', 1);
    await h.sysctl('net.ipv6.conf.default.keep_addr_on_down', 1);
    await h.sysctl('net.ipv4.conf.default.rp_filter', 0);
    return h;
  }

  /**
   * A link: `aIf` in host a, `bIf` in host b, addressed and shaped. A plain veth pair, or with a
   * delay, jitter or loss two veth pairs joined by a delay line in the wire namespace.
   * Impossible shapes are refused (DC_LINK_INVALID) before anything is created.
   */
  async link(a: Host, aIf: string, b: Host, bIf: string, o: LinkOptions = {}): Promise<void> {
    validateLinkShape(o);
    const emulated = isEmulated(o);
    const tmpA = `v${process.pid % 10000}${Math.floor(Math.random() * 1e6)}a`.slice(0, 15);
    const tmpB = tmpA.slice(0, -1) + 'b';
    let mid: { wire: Host; ifA: string; ifB: string } | undefined;
    if (emulated) {
      const wire = await this.wire();
      const n = this.#wireLinks++;
      mid = { wire, ifA: `w${n}a`, ifB: `w${n}b` };
      await sh('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', `${tmpA}m`]);
      await sh('ip', ['link', 'add', tmpB, 'type', 'veth', 'peer', 'name', `${tmpB}m`]);
      await sh('ip', ['link', 'set', `${tmpA}m`, 'netns', wire.ns, 'name', mid.ifA]);
      await sh('ip', ['link', 'set', `${tmpB}m`, 'netns', wire.ns, 'name', mid.ifB]);
      for (const dev of [mid.ifA, mid.ifB]) {
        if (o.mtu !== undefined) await wire.ip('link', 'set', 'dev', dev, 'mtu', String(o.mtu));
        await wire.exec('ethtool', ['-K', dev, 'gro', 'off'], { allowFail: true });
      }
    } else {
      await sh('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    }
    await sh('ip', ['link', 'set', tmpA, 'netns', a.ns, 'name', aIf]);
    await sh('ip', ['link', 'set', tmpB, 'netns', b.ns, 'name', bIf]);
    for (const [h, dev, addrs] of [
      [a, aIf, o.a ?? []],
      [b, bIf, o.b ?? []],
    ] as const) {
      if (o.mtu !== undefined) await h.ip('link', 'set', 'dev', dev, 'mtu', String(o.mtu));
      // Offloads make tbf shape 64 KiB super-packets; turn them off so rates are honest. Through
      // the delay line frames also need complete checksums (AF_PACKET forwards them as they are).
      await h.exec('ethtool', ['-K', dev, ...(emulated ? ['tx', 'off'] : []), 'tso', 'off', 'gso', 'off', 'gro', 'off'], { allowFail: !emulated });
      for (const addr of addrs) {
        await h.ip('addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : []));
      }
      await h.ip('link', 'set', 'dev', dev, 'up');
    }
    if (mid !== undefined) await this.#startDelayLine(a, aIf, b, bIf, mid, o);
    const inTbf = o.rateIn !== 'delayline' || !emulated;
    const ab = inTbf ? (o.rateAtoB ?? o.rateMbit) : undefined;
    const ba = inTbf ? (o.rateBtoA ?? o.rateMbit) : undefined;
    if (ab !== undefined) await a.ip('link', 'set', 'dev', aIf, 'txqueuelen', '1000').then(() => sh('tc', ['-n', a.ns, 'qdisc', 'replace', 'dev', aIf, 'root', ...tbfArgs(ab)]));
    if (ba !== undefined) await sh('tc', ['-n', b.ns, 'qdisc', 'replace', 'dev', bIf, 'root', ...tbfArgs(ba)]);
  }

  /** Start the link's delay line and wait until both hosts see carrier (it sets its ends up when ready). */
  async #startDelayLine(a: Host, aIf: string, b: Host, bIf: string, mid: { wire: Host; ifA: string; ifB: string }, o: LinkOptions): Promise<void> {
    const name = `${a.ns.slice(this.prefix.length + 1)}-${aIf}`;
    const child = this.#spawnWire(mid.wire, `delayline-${name}`, [delaylinePath(), ...delaylineArgs(mid.ifA, mid.ifB, o)]);
    this.delayLines.set(name, child);
    let stderr = '';
    let started = false;
    // before it is up: kept for the error; after: passed on (e.g. its real-time guard's warning)
    child.stderr?.on('data', (d: Buffer) => {
      if (started) process.stderr.write(d);
      else stderr += d.toString();
    });
    const carrier = async (h: Host, dev: string): Promise<boolean> => (await h.ip('-o', 'link', 'show', 'dev', dev)).includes('LOWER_UP');
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new DuocellError('DC_LINK_EMULATOR', `the delay line of ${name} exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
      }
      if ((await carrier(a, aIf)) && (await carrier(b, bIf))) {
        started = true;
        if (stderr !== '') process.stderr.write(stderr);
        return;
      }
      if (Date.now() > deadline) throw new DuocellError('DC_LINK_EMULATOR', `the delay line of ${name} did not bring its link up in 10 s: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Kill every process started through Host.spawn and delete every namespace. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const c of this.#children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    await Promise.all(
      [...this.#children].map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))),
    );
    for (const h of this.hosts) await sh('ip', ['netns', 'del', h.ns], { allowFail: true });
    if (this.#wire !== undefined) await sh('ip', ['netns', 'del', this.#wire.ns], { allowFail: true });
  }
}

/** Can this process build test hosts? (root, ip netns, MPTCP). The reason when not. */
export async function netnsUnavailable(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  try {
    await sh('ip', ['netns', 'list']);
  } catch {
    return 'ip netns is not available';
  }
  try {
    const v = (await sh('sysctl', ['-n', 'net.mptcp.enabled'])).trim();
    if (v !== '1' && v !== '0') return 'kernel has no MPTCP';
  } catch {
    return 'kernel has no MPTCP (net.mptcp.enabled missing)';
  }
  return false;
}
