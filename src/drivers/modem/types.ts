/** Values the modem units share and the manager publishes (re-exported by manager.ts). */

export type IpFamilyChoice = 'ipv4' | 'ipv6' | 'ipv4v6';

export interface RegistrationInfo {
  readonly registered: boolean;
  /** home, roaming, searching, denied, idle, unknown */
  readonly state: string;
  readonly mcc?: number;
  readonly mnc?: number;
  readonly operator?: string;
  readonly lacOrTac?: number;
  readonly cellId?: number;
  readonly accessTech?: string;
  readonly source: 'qmi' | 'at';
}

export interface SignalInfo {
  readonly rat: string;
  readonly rssi?: number;
  readonly rsrp?: number;
  readonly rsrq?: number;
  /** dB */
  readonly snr?: number;
  readonly band?: number;
}

export interface FamilySettings {
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway?: string;
  readonly dns: string[];
  readonly mtu?: number;
}

export interface WdsSettings {
  readonly apn: string;
  /** Network interface carrying the session (from the board profile), e.g. wwan0. */
  readonly interface?: string;
  readonly ipv4?: FamilySettings;
  readonly ipv6?: FamilySettings;
}
