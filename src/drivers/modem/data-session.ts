import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import {
  decodeWdsCurrentSettings,
  decodeWdsPacketServiceIndication,
  decodeWdsPacketServiceStatus,
  decodeWdsStartNetwork,
  SERVICE,
  WDS_CURRENT_SETTINGS_MASK,
  WDS_STATUS,
  type QmiMessage,
  type WdsCurrentSettings,
} from '../../protocols/qmi/index.js';
import type { AtUrc } from './at.js';
import type { QmiClient } from './qmi.js';
import type { FamilySettings, IpFamilyChoice, WdsSettings } from './types.js';

const log = logger('duocell:modem');

/**
 * The data session as its own unit, behind one interface so that a session controlled over AT
 * (ECM/NCM + DHCP) can sit beside the QMI one. The manager drives it from its state table:
 *
 *     connecting ── start() ──► settings ──(manager: netif.apply)──► connected
 *     connected  ── check() (poll) / dropped callback (indication, URC) ──► stop() ──► registered
 *     any loss   ── stop(why, talk=false when the port is gone)
 *
 * start() errors: DC_MODEM_CONNECT or a device-reported result (DC_QMI_RESULT, DC_AT_CME, …)
 * make the manager fire connect-failed (back-off, try again); any other error counts as a lost
 * port (close, re-probe). The manager configures and removes the data interface itself.
 */
export interface DataSession {
  /** Which control channel runs it: 'qmi', 'at'. */
  readonly kind: string;
  /** True while the modem holds a session this unit started. */
  readonly active: boolean;
  /** Error codes of start() that mean "the network refused", not "the port is gone". */
  readonly refusalCodes: readonly string[];
  start(): Promise<WdsSettings>;
  /** The fall-back poll while connected: why the session is gone, or undefined while it is up. */
  check(): Promise<string | undefined>;
  /** Tear down; `talk` false when the control port is gone (only forget). */
  stop(why: string, talk: boolean): Promise<void>;
  /** QMI indications (a QMI session watches WDS Packet Service Status). */
  indication?(m: QmiMessage): void;
  /** AT unsolicited results (an AT session may watch +CGEV and the like). */
  urc?(u: AtUrc): void;
}

export interface QmiDataSessionOptions {
  readonly qmi: () => QmiClient | undefined;
  readonly apn: string;
  readonly ipFamily: IpFamilyChoice;
  readonly username?: string;
  readonly password?: string;
  readonly connectTimeoutMs: number;
  readonly netInterface?: string;
  /** Called when the network ends the session (indication). */
  readonly dropped: (why: string) => void;
}

interface Held {
  readonly family: 4 | 6;
  readonly client: number;
  readonly handle: number;
}

const QMI_NO_EFFECT = 26;

/** A QMI WDS data session: one WDS client per IP family (dual stack = two Start Network calls). */
export class QmiDataSession implements DataSession {
  readonly kind = 'qmi';
  readonly refusalCodes = ['DC_MODEM_CONNECT', 'DC_QMI_RESULT'];
  #held: Held[] = [];

  constructor(readonly o: QmiDataSessionOptions) {}

  get active(): boolean {
    return this.#held.length > 0;
  }

  #q(): QmiClient {
    const q = this.o.qmi();
    if (!q) throw new DuocellError('DC_MODEM_CLOSED', 'no QMI port');
    return q;
  }

  indication(m: QmiMessage): void {
    if (m.key !== 'wds.packetServiceStatusIndication') return;
    let ind;
    try {
      ind = decodeWdsPacketServiceIndication(m.frame.tlvs);
    } catch (e) {
      const err = toDuocellError(e);
      log.warn({ code: err.code, err: err.message }, 'WDS packet service indication dropped');
      return;
    }
    if (ind && ind.status === WDS_STATUS.disconnected && this.#held.some((x) => x.client === m.frame.client))
      this.o.dropped(`network ended the session (call end reason ${ind.callEndReason ?? 'unknown'})`);
  }

  async check(): Promise<string | undefined> {
    for (const s of this.#held) {
      const status = await this.#q().ask('wds.getPacketServiceStatus', decodeWdsPacketServiceStatus, {}, { client: s.client });
      if (status !== WDS_STATUS.connected) return `packet service status is ${String(status)} (polled)`;
    }
    return undefined;
  }

  async start(): Promise<WdsSettings> {
    const q = this.#q();
    const o = this.o;
    const families: (4 | 6)[] = o.ipFamily === 'ipv4v6' ? [4, 6] : o.ipFamily === 'ipv6' ? [6] : [4];
    const out: { ipv4?: FamilySettings; ipv6?: FamilySettings } = {};
    const failures: DuocellError[] = [];
    for (const family of families) {
      const client = await q.allocateClient(SERVICE.WDS, false);
      try {
        await q.request('wds.setIpFamily', { preference: family }, { client, allowFailure: true });
        const m = await q.request(
          'wds.startNetwork',
          {
            apn: o.apn,
            ip_family_preference: family,
            ...(o.username ? { username: o.username, password: o.password ?? '', authentication_preference: 'both' } : {}),
          },
          { client, allowFailure: true, timeoutMs: o.connectTimeoutMs },
        );
        const sn = decodeWdsStartNetwork(m.frame.tlvs);
        if (m.result && !m.result.ok && m.result.error !== QMI_NO_EFFECT) {
          const verbose = sn.verbose;
          throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} start network failed: ${m.result.errorName}${verbose ? ` (verbose reason type ${verbose.type} cause ${verbose.reason})` : ''}`, {
            origin: 'device',
            family,
            qmiError: m.result.error,
            callEndReason: sn.callEndReason,
            verbose,
          });
        }
        this.#held.push({ family, client, handle: sn.packetDataHandle ?? 0 });
        const st = await q.request('wds.getCurrentSettings', { requested_settings: WDS_CURRENT_SETTINGS_MASK }, { client });
        let cur: WdsCurrentSettings;
        try {
          cur = decodeWdsCurrentSettings(st.frame.tlvs);
        } catch (e) {
          const d = toDuocellError(e);
          throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} session up but its settings are malformed: ${d.code}: ${d.message}`, { origin: 'device', family, cause: d });
        }
        const fs = familySettings(family, cur);
        if (!fs) throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} session up but the modem reported no address`, { origin: 'device', family });
        if (family === 4) out.ipv4 = fs;
        else out.ipv6 = fs;
      } catch (e) {
        const err = toDuocellError(e);
        if (err.code !== 'DC_MODEM_CONNECT' && err.code !== 'DC_QMI_RESULT') throw err;
        failures.push(err);
        if (!this.#held.some((s) => s.client === client)) await q.releaseClient(SERVICE.WDS, client).catch(() => undefined);
        log.warn({ family, code: err.code }, err.message);
      }
    }
    if (!out.ipv4 && !out.ipv6) throw failures[0] ?? new DuocellError('DC_MODEM_CONNECT', 'no family could be started');
    return { apn: o.apn, ...(o.netInterface ? { interface: o.netInterface } : {}), ...out };
  }

  async stop(why: string, talk: boolean): Promise<void> {
    const held = this.#held;
    this.#held = [];
    const q = this.o.qmi();
    if (!talk || !q || q.closed) return;
    for (const s of held) {
      if (s.handle) await q.call('wds.stopNetwork', { packet_data_handle: s.handle }, { client: s.client, timeoutMs: 2000 }).catch(() => undefined);
      await q.releaseClient(SERVICE.WDS, s.client).catch(() => undefined);
    }
    if (held.length > 0) log.info({ why, sessions: held.length }, 'data session torn down');
  }
}

export function familySettings(family: 4 | 6, v: WdsCurrentSettings): FamilySettings | undefined {
  const f = family === 4 ? v.ipv4 : v.ipv6;
  if (f === undefined) return undefined;
  return { address: f.address, prefixLength: f.prefixLength, ...(f.gateway === undefined ? {} : { gateway: f.gateway }), dns: f.dns, ...(v.mtu === undefined ? {} : { mtu: v.mtu }) };
}
