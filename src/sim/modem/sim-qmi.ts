import { randomInt } from 'node:crypto';
import { logger } from '../../core/logger.js';
import { decodeMessage, encodeFrame, encodeIndication, encodeResponse, QmiStreamParser, SERVICE, type QmiMessage } from '../../protocols/qmi/index.js';
import type { ModemSimulator, WdsSessionEvent } from './sim.js';

/**
 * The simulated modem's QMI side (sim.ts holds the one modem state: SIM, radio, registration):
 * CTL client ids, the DMS, UIM, NAS, WDA and WDS requests, and the data sessions started over WDS.
 */

export interface Session {
  readonly client: number;
  readonly handle: number;
  readonly family: 4 | 6;
  readonly apn: string;
}

const QMI_ERR = { InvalidQmiCommand: 71, InvalidClientId: 7, IncorrectPin: 12, CallFailed: 14, OutOfCall: 15, MissingArgument: 17, NoEffect: 26, PinBlocked: 35, UimUninitialized: 37, InvalidArgument: 48, DeviceNotReady: 52 } as const;

const log = logger('duocell:sim:modem');

export class SimQmi {
  #clients = new Map<number, Set<number>>();
  #nextCid = new Map<number, number>();
  #ipFamily = new Map<number, 4 | 6>();
  #sessions: Session[] = [];
  #qmiParser = new QmiStreamParser();

  constructor(readonly m: ModemSimulator) {}

  get sessions(): readonly Session[] {
    return this.#sessions;
  }

  /** The modem rebooted: client ids and framing state are gone. */
  reset(): void {
    this.#clients.clear();
    this.#ipFamily.clear();
    this.#qmiParser = new QmiStreamParser();
  }

  /** Registration changed: a NAS Serving System indication to every NAS client. */
  servingSystemChanged(): void {
    for (const cid of this.#clients.get(SERVICE.NAS) ?? []) this.m.qmi.write(encodeIndication('nas.servingSystemIndication', cid, this.servingSystem()));
  }

  /** Bytes from the host on the QMI port. */
  onData(d: Buffer): void {
    if (this.m.hung) return;
    for (const item of this.#qmiParser.push(d)) {
      if (!('frame' in item) || item.frame.kind !== 'request') continue;
      let m: QmiMessage;
      try {
        m = decodeMessage(item.frame);
      } catch {
        continue;
      }
      try {
        this.#qmiRequest(m);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'sim QMI handler failed');
      }
    }
  }

  servingSystem(): Record<string, unknown> {
    const reg = this.m.regStat === 1;
    const { mcc, mnc, name } = this.m.cfg.operator;
    return {
      serving_system: {
        registration_state: reg ? 1 : this.m.regStat === 2 ? 2 : 0,
        cs_attach_state: reg ? 1 : 2,
        ps_attach_state: reg ? 1 : 2,
        selected_network: reg ? 2 : 0,
        radio_interfaces: reg ? [8] : [],
      },
      ...(reg
        ? {
            roaming_indicator: 1,
            current_plmn: { mcc, mnc, description: name },
            lac_3gpp: this.m.cfg.tac & 0xffff,
            cid_3gpp: this.m.cfg.cellId,
          }
        : {}),
    };
  }

  sessionEvent(s: Session): WdsSessionEvent {
    const f = s.family === 4 ? this.m.cfg.ipv4 : this.m.cfg.ipv6;
    return { family: s.family, handle: s.handle, client: s.client, apn: s.apn, address: f.address, prefixLength: f.prefixLength, gateway: f.gateway, dns: f.dns, mtu: f.mtu };
  }

  #qmiRequest(m: QmiMessage): void {
    const f = m.frame;
    const a = { client: f.client, tid: f.tid };
    const key = m.key;
    const reply = (values: Record<string, unknown> = {}, error = 0): void => {
      if (key) this.m.qmi.write(encodeResponse(key, a, values, error));
    };
    if (key === undefined) {
      // undescribed request: answer with a bare failure Result (InvalidQmiCommand 71)
      const r = Buffer.from([1, 0, 71, 0]);
      this.m.qmi.write(encodeFrame({ service: f.service, client: f.client, kind: 'response', tid: f.tid, message: f.message, tlvs: [{ type: 2, value: r }] }));
      return;
    }
    const v = m.values as Record<string, any>;
    if (f.service !== SERVICE.CTL && !this.#clients.get(f.service)?.has(f.client)) return reply({}, QMI_ERR.InvalidClientId);
    switch (key) {
      case 'ctl.allocateCid': {
        const svc = v.service as number;
        const cid = this.#nextCid.get(svc) ?? 1;
        this.#nextCid.set(svc, cid >= 254 ? 1 : cid + 1);
        if (!this.#clients.has(svc)) this.#clients.set(svc, new Set());
        this.#clients.get(svc)!.add(cid);
        return reply({ allocation_info: { service: svc, cid } });
      }
      case 'ctl.releaseCid': {
        const { service, cid } = v.release_info as { service: number; cid: number };
        this.#clients.get(service)?.delete(cid);
        if (service === SERVICE.WDS) {
          // releasing a client ends its data session (no autoconnect in this modem)
          for (const x of this.#sessions.filter((s) => s.client === cid)) this.m.emit('wds-stopped', { ...this.sessionEvent(x), reason: 'generic-client-end' });
          this.#sessions = this.#sessions.filter((s) => s.client !== cid);
        }
        return reply({ release_info: { service, cid } });
      }
      case 'ctl.sync':
        this.#clients.clear();
        this.dropSessions('generic-client-end', false);
        return reply();
      case 'dms.getManufacturer':
        return reply({ manufacturer: 'QUALCOMM INCORPORATED' });
      case 'dms.getModel':
        return reply({ model: this.m.cfg.model });
      case 'dms.getRevision':
        return reply({ revision: this.m.cfg.revision });
      case 'dms.getIds':
        return reply({ imei: this.m.cfg.imei, imei_software_version: '10' });
      case 'dms.getOperatingMode':
        return reply({ mode: this.m.cfun === 1 ? 0 : 1 });
      case 'dms.setOperatingMode':
        this.m.cfun = v.mode === 0 ? 1 : 4;
        if (this.m.cfun === 1) this.m.maybeRegister();
        else this.m.setReg(0);
        return reply();
      case 'dms.uimGetPinStatus':
        if (!this.m.cfg.dmsUim) return reply({}, QMI_ERR.InvalidQmiCommand);
        return reply({
          pin1_status: {
            current_status: this.m.pukRequired ? 4 : this.m.cfg.pin === undefined ? 3 : this.m.simLocked ? 1 : 2,
            verify_retries_left: this.m.pinRetriesLeft,
            unblock_retries_left: this.m.pukRetriesLeft,
          },
          pin2_status: { current_status: 1, verify_retries_left: 3, unblock_retries_left: 10 },
        });
      case 'dms.uimVerifyPin':
      case 'uim.verifyPin': {
        if (key === 'dms.uimVerifyPin' && !this.m.cfg.dmsUim) return reply({}, QMI_ERR.InvalidQmiCommand);
        const r = this.m.verifyPin(String((v.info as { pin: string }).pin));
        const retries = { verify_retries_left: this.m.pinRetriesLeft, unblock_retries_left: this.m.pukRetriesLeft };
        const t = key === 'dms.uimVerifyPin' ? { pin_retries_status: retries } : { retries_remaining: retries };
        if (r === 'ok') return reply(t);
        return reply(t, r === 'blocked' ? QMI_ERR.PinBlocked : r === 'not-locked' ? QMI_ERR.NoEffect : QMI_ERR.IncorrectPin);
      }
      case 'uim.getCardStatus':
        return reply({
          card_status: {
            index_gw_primary: 0, index_1x_primary: 0xffff, index_gw_secondary: 0xffff, index_1x_secondary: 0xffff,
            cards: [{
              card_state: 1, upin_state: 0, upin_retries: 0, upuk_retries: 0, error_code: 0,
              applications: [{
                type: 2, state: this.m.simLocked ? 2 : 7, personalization_state: 2, personalization_feature: 0, personalization_retries: 0,
                personalization_unblock_retries: 0, application_identifier_value: 'a0000000871002ff49ff0589', upin_replaces_pin1: 0,
                pin1_state: this.m.pukRequired ? 4 : this.m.cfg.pin === undefined ? 3 : this.m.simLocked ? 1 : 2,
                pin1_retries: this.m.pinRetriesLeft, puk1_retries: this.m.pukRetriesLeft, pin2_state: 1, pin2_retries: 3, puk2_retries: 10,
              }],
            }],
          },
        });
      case 'nas.registerIndications':
        return reply();
      case 'nas.getServingSystem':
        return reply(this.servingSystem());
      case 'nas.getSignalInfo': {
        const s = this.m.signal;
        return reply(this.m.regStat === 1 ? { lte_signal_strength: { rssi: s.rssi, rsrq: s.rsrq, rsrp: s.rsrp, snr: s.snr } } : {});
      }
      case 'nas.getSignalStrength': {
        const s = this.m.signal;
        if (this.m.regStat !== 1) return reply({}, QMI_ERR.OutOfCall);
        return reply({ signal_strength: { strength: s.rssi, radio_interface: 8 }, rsrq: { rsrq: s.rsrq, radio_interface: 8 }, lte_snr: s.snr, lte_rsrp: s.rsrp });
      }
      case 'nas.getSystemInfo': {
        const reg = this.m.regStat === 1;
        const { mcc, mnc } = this.m.cfg.operator;
        return reply({
          lte_service_status: { service_status: reg ? 2 : 0, true_service_status: reg ? 2 : 0, preferred_data_path: 0 },
          ...(reg
            ? {
                lte_system_info_v2: {
                  domain_valid: 1, domain: 3, service_capability_valid: 1, service_capability: 3, roaming_status_valid: 1, roaming_status: 0,
                  forbidden_valid: 1, forbidden: 0, lac_valid: 0, lac: 0xffff, cid_valid: 1, cid: this.m.cfg.cellId,
                  registration_reject_info_valid: 0, registration_reject_domain: 0, registration_reject_cause: 0,
                  network_id_valid: 1, mcc: String(mcc), mnc: String(mnc).padStart(2, '0'), tac_valid: 1, tac: this.m.cfg.tac,
                },
              }
            : {}),
        });
      }
      case 'wda.setDataFormat':
        if (typeof v.link_layer_protocol === 'number') this.m.dataFormat = v.link_layer_protocol === 2 ? 'raw-ip' : '802-3';
        return reply({ link_layer_protocol: this.m.dataFormat === 'raw-ip' ? 2 : 1, uplink_data_aggregation_protocol: 0, downlink_data_aggregation_protocol: 0 });
      case 'wda.getDataFormat':
        return reply({ link_layer_protocol: this.m.dataFormat === 'raw-ip' ? 2 : 1 });
      case 'wds.setIpFamily':
        this.#ipFamily.set(f.client, v.preference === 6 ? 6 : 4);
        return reply();
      case 'wds.startNetwork': {
        if (this.#sessions.some((s) => s.client === f.client)) return reply({}, QMI_ERR.NoEffect);
        const family: 4 | 6 = v.ip_family_preference === 6 ? 6 : v.ip_family_preference === 4 ? 4 : (this.#ipFamily.get(f.client) ?? 4);
        if (this.m.regStat !== 1 || this.m.simLocked)
          return reply({ call_end_reason: 'generic-no-service', verbose_call_end_reason: { type: '3gpp', reason: 30 } }, QMI_ERR.CallFailed);
        const handle = randomInt(1, 0x7fffffff);
        const s: Session = { client: f.client, handle, family, apn: String(v.apn ?? '') };
        this.#sessions.push(s);
        reply({ packet_data_handle: handle });
        this.m.emit('wds-started', this.sessionEvent(s));
        return;
      }
      case 'wds.stopNetwork': {
        const s = this.#sessions.find((x) => x.handle === v.packet_data_handle);
        if (!s) return reply({}, QMI_ERR.InvalidArgument);
        this.#sessions = this.#sessions.filter((x) => x !== s);
        reply();
        this.m.emit('wds-stopped', { ...this.sessionEvent(s), reason: 'generic-client-end' });
        return;
      }
      case 'wds.getPacketServiceStatus':
        return reply({ connection_status: this.#sessions.some((s) => s.client === f.client) ? 2 : 1 });
      case 'wds.getCurrentSettings': {
        const s = this.#sessions.find((x) => x.client === f.client);
        if (!s) return reply({}, QMI_ERR.OutOfCall);
        if (s.family === 4) {
          const c = this.m.cfg.ipv4;
          const mask = c.prefixLength === 0 ? 0 : (0xffffffff << (32 - c.prefixLength)) >>> 0;
          return reply({
            apn_name: s.apn,
            ipv4_address: c.address,
            ipv4_gateway_address: c.gateway,
            ipv4_gateway_subnet_mask: [mask >>> 24, (mask >>> 16) & 255, (mask >>> 8) & 255, mask & 255].join('.'),
            ...(c.dns[0] ? { ipv4_primary_dns_address: c.dns[0] } : {}),
            ...(c.dns[1] ? { ipv4_secondary_dns_address: c.dns[1] } : {}),
            mtu: c.mtu,
            ip_family: 4,
          });
        }
        const c = this.m.cfg.ipv6;
        return reply({
          apn_name: s.apn,
          ipv6_address: { address: c.address, prefix_length: c.prefixLength },
          ipv6_gateway_address: { address: c.gateway, prefix_length: c.prefixLength },
          ...(c.dns[0] ? { ipv6_primary_dns_address: c.dns[0] } : {}),
          ...(c.dns[1] ? { ipv6_secondary_dns_address: c.dns[1] } : {}),
          mtu: c.mtu,
          ip_family: 6,
        });
      }
      default:
        return reply({}, QMI_ERR.InvalidArgument);
    }
  }
  /** End every data session (with a WDS indication unless the modem is gone). */
  dropSessions(reason: string, indicate = true): void {
    const gone = this.#sessions;
    this.#sessions = [];
    for (const s of gone) {
      if (indicate)
        this.m.qmi.write(
          encodeIndication('wds.packetServiceStatusIndication', s.client, {
            connection_status: { status: 'disconnected', reconfiguration_required: 0 },
            call_end_reason: reason,
            ip_family: s.family,
          }),
        );
      this.m.emit('wds-stopped', { ...this.sessionEvent(s), reason });
    }
  }
}
