import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { AtClient } from './at.js';
import type { DataSession } from './data-session.js';
import type { DhcpLease } from './dhcp-lease.js';
import type { ModemState, ModemEvent } from './fsm.js';
import type { QmiClient } from './qmi.js';
import type { ModemInfo } from './radio-state.js';
import type { TransportOpener } from './transport.js';
import type { IpFamilyChoice, RegistrationInfo, SignalInfo, WdsSettings } from './types.js';

/** The modem manager's options and events (manager.ts). */

/** What a data-session unit gets from the manager (see DataSession in data-session.ts). */
export interface DataSessionDeps {
  readonly qmi: () => QmiClient | undefined;
  readonly at: () => AtClient | undefined;
  /** The modem family (from AT+CGMI/CGMM; generic without an AT port). */
  readonly family: () => ModemFamily;
  /** The unit calls this when the network ends the session (indication, URC). */
  readonly dropped: (why: string) => void;
}

export interface ModemManagerOptions {
  /**
   * Candidate port paths, e.g. ['/dev/cdc-wdm0', '/dev/ttyUSB2'], or a function asked again
   * before every probe (USB re-enumeration may rename ports; see board.ts).
   */
  readonly ports: readonly string[] | (() => readonly string[] | Promise<readonly string[]>);
  /** The network interface the data session runs on (wwan0), reported with the settings. */
  readonly netInterface?: string;
  /**
   * Link framing asked of the modem (WDA Set Data Format) and, for raw-ip, of qmi_wwan
   * (/sys/class/net/<if>/qmi/raw_ip). 'keep' leaves both as they are. Default 'raw-ip'.
   */
  readonly dataFormat?: 'raw-ip' | '802-3' | 'keep';
  /** Root of sysfs (tests point it elsewhere). */
  readonly sysfsRoot?: string;
  /** Opens a port; injected (serial/char device on hardware, the simulator's ptys in tests). */
  readonly open?: TransportOpener;
  readonly apn: string;
  readonly ipFamily?: IpFamilyChoice;
  readonly pin?: string;
  readonly username?: string;
  readonly password?: string;
  /** Try a PIN only when at least this many attempts remain (≥ 2 keeps the last one). */
  readonly minPinRetries?: number;
  readonly probeTimeoutMs?: number;
  /** Registration/data poll period while waiting or connected (indications act at once). */
  readonly pollMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  readonly connectTimeoutMs?: number;
  /** Timeout of an ordinary QMI request or AT command (default 5 s); a modem that stops
   *  answering is treated like a lost port: closed and probed again. */
  readonly requestTimeoutMs?: number;
  readonly rand?: () => number;
  /**
   * The data interface (DataInterface in netif.ts over rtnetlink): configured from the session
   * settings before the manager says 'connected', deconfigured first thing on any loss. Without
   * it the manager only reports the settings (someone else must configure the interface).
   */
  readonly netif?: { apply(s: WdsSettings): Promise<void>; remove(why: string): Promise<void>; close?(): Promise<void> };
  /** The data-session unit; default a QMI WDS session (QmiDataSession). */
  readonly dataSession?: (deps: DataSessionDeps) => DataSession;
  /**
   * The control channel: 'qmi' (default; QMI with an optional AT port) or 'at' (an AT-only
   * module whose data side is an ECM/NCM netdev, `netInterface`, addressed by DHCP: at-data.ts).
   */
  readonly control?: 'qmi' | 'at';
  /** AT only: the PDP context id (default 1). */
  readonly cid?: number;
  /** AT only: link the netdev up before DHCP (required with control 'at' and no dataSession). */
  readonly linkUp?: (ifname: string) => Promise<void>;
  /** AT only, tests: another lease source. */
  readonly lease?: () => DhcpLease;
}

export interface StateChange {
  readonly state: ModemState;
  readonly previous: ModemState;
  readonly event: ModemEvent;
  /** Why, in words (also logged). */
  readonly reason: string;
  readonly error?: { readonly code: string; readonly message: string; readonly origin: string };
}

export interface ModemManagerEvents {
  state: [StateChange];
  registration: [RegistrationInfo];
  signal: [SignalInfo];
  settings: [WdsSettings];
  info: [ModemInfo];
}
