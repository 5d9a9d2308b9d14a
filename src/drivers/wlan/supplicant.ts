import fs from 'node:fs';
import path from 'node:path';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Waiter } from '../../core/waiter.js';
import {
  derivePsk, encodeConfig, expectOk, parseInterfaces, parseStatus, parseUnsolicited, request,
  type SupplicantStatus, type WlanNetwork,
} from '../../protocols/wpa-ctrl/index.js';
import { watchFd, type FdWatch } from '../sockets/fd-watch.js';
import { native } from '../sockets/native.js';

/**
 * duocell's WLAN uplink as a station, through wpa_supplicant's global control socket.
 * wpa_supplicant runs as its own service (systemd/duocell-wlan.service: `-g SOCKET`, no
 * interfaces), so an association survives a restart of duocell. duocell owns the settings:
 *
 *   start()/interface appears ─► write CONF (SSID in hex, PSK derived; 0600)
 *                              ─► INTERFACES: ours listed? ── no ──► INTERFACE_ADD ifname CONF nl80211
 *                                                          └─ yes, CONF changed ─► IFNAME=… RECONFIGURE
 *   socket absent / no answer ─► retry with backoff (logged once per outage, DC_WLAN_CTRL_UNREACHABLE)
 *
 * Association and loss are not read from here: the WLAN driver follows nl80211's events.
 * Replies come in order on our own datagram socket (bound in the abstract namespace, so a
 * private /tmp does not hide it from wpa_supplicant); one request at a time.
 */

const log = logger('duocell:wlan:supplicant');

/** A connected datagram control socket; a fake in unit tests. */
export interface CtrlTransport {
  send(text: string): void;
  onMessage(cb: (text: string) => void): void;
  close(): void;
}

let seq = 0;

/** The kernel socket: AF_UNIX datagrams to `socketPath`, from an abstract address of our own. */
export function openCtrlSocket(socketPath: string): CtrlTransport {
  const n = native();
  if (n.unixDgram === undefined) throw new DuocellError('DC_WLAN_CTRL_UNREACHABLE', 'the native addon has no unixDgram (rebuild it)');
  let fd: number;
  try {
    fd = n.unixDgram(`@duocell-wpa-${process.pid}-${++seq}`, socketPath);
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    throw new DuocellError('DC_WLAN_CTRL_UNREACHABLE', `wpa_supplicant control socket ${socketPath}: ${(e as Error).message}`, { ...(errno === undefined ? {} : { errno }), cause: e });
  }
  const cbs: Array<(t: string) => void> = [];
  let watch: FdWatch | undefined = watchFd(fd, (b) => {
    const text = b.toString('utf8');
    for (const cb of cbs) cb(text);
  }, (errno) => log.debug({ errno }, 'control socket ended'), { dgram: true });
  return {
    send(text) {
      fs.writeSync(fd, Buffer.from(text, 'utf8'));
    },
    onMessage(cb) {
      cbs.push(cb);
    },
    close() {
      watch?.stop();
      watch = undefined;
      try {
        n.close(fd);
      } catch {
        /* already closed */
      }
    },
  };
}

export interface SupplicantOptions {
  ifname: string;
  network: WlanNetwork;
  /** wpa_supplicant's global control socket (its -g). */
  socketPath: string;
  /** Where the configuration file is written (readable by root only: it holds the PSK). */
  confPath: string;
  country?: string;
  timeoutMs?: number;
  /** Transport factory (tests); default the kernel socket. */
  open?: (socketPath: string) => CtrlTransport;
  /** Retry period while wpa_supplicant is unreachable (default 2000 ms, doubling to 30 s). */
  retryMs?: number;
}

export class Supplicant {
  readonly #o: SupplicantOptions;
  readonly #waiter: Waiter<string>;
  #t: CtrlTransport | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;
  #retryMs: number;
  #down = false;
  #stopped = false;
  #psk: Buffer | undefined;
  /** The configuration text last handed to wpa_supplicant. */
  #applied: string | undefined;

  constructor(o: SupplicantOptions) {
    this.#o = o;
    this.#waiter = new Waiter<string>('DC_WLAN_CTRL_UNREACHABLE');
    this.#retryMs = o.retryMs ?? 2000;
  }

  #transport(): CtrlTransport {
    if (this.#t !== undefined) return this.#t;
    const t = (this.#o.open ?? openCtrlSocket)(this.#o.socketPath);
    t.onMessage((text) => {
      if (parseUnsolicited(text) !== undefined) return; // events: nl80211 is our source
      this.#waiter.resolve(text);
    });
    this.#t = t;
    return t;
  }

  #drop(): void {
    this.#t?.close();
    this.#t = undefined;
    this.#waiter.rejectAll(new DuocellError('DC_WLAN_CTRL_UNREACHABLE', 'control socket closed'));
  }

  /** One request, its reply (requests are serialised; a timeout drops the socket). */
  request(text: string, what = text.split(/[ \t]/)[0] ?? text): Promise<string> {
    const run = async (): Promise<string> => {
      const t = this.#transport();
      const reply = this.#waiter.wait(() => true, this.#o.timeoutMs ?? 3000, `wpa_supplicant reply to ${what}`);
      try {
        t.send(text);
      } catch (e) {
        this.#drop();
        await reply.catch(() => undefined);
        const errno = (e as { errno?: number }).errno;
        throw new DuocellError('DC_WLAN_CTRL_UNREACHABLE', `sending ${what}: ${(e as Error).message}`, { ...(errno === undefined ? {} : { errno }), cause: e });
      }
      try {
        return await reply;
      } catch (e) {
        this.#drop(); // a late reply must never answer the next request
        throw e;
      }
    };
    const p = this.#busy.then(run, run);
    this.#busy = p.catch(() => undefined);
    return p;
  }

  #config(): string {
    const n = this.#o.network;
    if (n.passphrase !== undefined && this.#psk === undefined) this.#psk = derivePsk(n.ssid, n.passphrase);
    return encodeConfig(n, { ...(this.#o.country === undefined ? {} : { country: this.#o.country }), ...(this.#psk === undefined ? {} : { psk: this.#psk }) });
  }

  /** Write the configuration and make sure wpa_supplicant runs our interface with it. */
  async apply(): Promise<'added' | 'reconfigured' | 'unchanged'> {
    const text = this.#config();
    fs.mkdirSync(path.dirname(this.#o.confPath), { recursive: true, mode: 0o700 });
    let onDisk: string | undefined;
    try {
      onDisk = fs.readFileSync(this.#o.confPath, 'utf8');
    } catch {
      onDisk = undefined;
    }
    // After a restart of duocell: the file wpa_supplicant runs with is already this one, so
    // no RECONFIGURE (it would drop a working association).
    if (this.#applied === undefined && onDisk === text) this.#applied = text;
    if (onDisk !== text) {
      const tmp = `${this.#o.confPath}.tmp`;
      fs.writeFileSync(tmp, text, { mode: 0o600 });
      fs.renameSync(tmp, this.#o.confPath);
    }
    const listed = parseInterfaces(await this.request('INTERFACES')).includes(this.#o.ifname);
    let result: 'added' | 'reconfigured' | 'unchanged';
    if (!listed) {
      expectOk(await this.request(request.interfaceAdd(this.#o.ifname, this.#o.confPath), 'INTERFACE_ADD'), `INTERFACE_ADD ${this.#o.ifname}`);
      result = 'added';
    } else if (this.#applied !== text) {
      expectOk(await this.request(request.forIface(this.#o.ifname, 'RECONFIGURE')), `RECONFIGURE ${this.#o.ifname}`);
      result = 'reconfigured';
    } else {
      result = 'unchanged';
    }
    this.#applied = text;
    return result;
  }

  async status(): Promise<SupplicantStatus> {
    return parseStatus(await this.request(request.forIface(this.#o.ifname, 'STATUS')));
  }

  /** Apply now and again whenever asked (interface appeared); retry while unreachable. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.ensure();
  }

  /** Apply; on failure schedule a retry with backoff. Never throws. */
  async ensure(): Promise<void> {
    if (this.#stopped) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    try {
      const r = await this.apply();
      if (this.#down || r !== 'unchanged') log.info({ ifname: this.#o.ifname, ssid: this.#o.network.ssid, result: r }, 'wpa_supplicant runs the WLAN uplink');
      this.#down = false;
      this.#retryMs = this.#o.retryMs ?? 2000;
    } catch (e) {
      const err = toDuocellError(e, 'DC_WLAN_CTRL_UNREACHABLE');
      if (!this.#down) log.warn({ code: err.code, err: err.message, ifname: this.#o.ifname }, 'wpa_supplicant not ready for the WLAN uplink; retrying');
      this.#down = true;
      if (this.#stopped) return;
      this.#retry = setTimeout(() => void this.ensure(), this.#retryMs);
      this.#retry.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, 30_000);
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#drop();
  }
}
