// @ts-check
// The page's types. The API's payloads are the server's own DTOs (src/web/deps.ts and the
// modules beside it), imported here for type checking only: the browser never loads them.
// Checked by `tsc -p tsconfig.ui.json` (npm run typecheck; test/unit/web-ui.test.ts).

/** @typedef {import('../deps.js').AccessType} AccessType */
/** @typedef {import('../deps.js').HealthView} HealthView */
/** @typedef {import('../deps.js').PathView} PathView */
/** @typedef {import('../deps.js').SessionDto} SessionDto */
/** @typedef {import('../deps.js').ModemView} ModemView */
/** @typedef {import('../deps.js').WlanView} WlanView */
/** @typedef {import('../deps.js').PolicyView} PolicyView */
/** @typedef {import('../deps.js').PolicyDto} PolicyDto */
/** @typedef {import('../deps.js').SubscriberView} SubscriberView */
/** @typedef {import('../deps.js').SubscriberInput} SubscriberInput */
/** @typedef {import('../deps.js').ProxyView} ProxyView */
/** @typedef {import('../deps.js').OtaView} OtaView */
/** @typedef {import('../deps.js').PathManagerView} PathManagerView */
/** @typedef {import('../live.js').ThroughputSample} ThroughputSample */
/** @typedef {import('../live.js').Rate} Rate */
/** @typedef {import('../system.js').SystemView} SystemView */

/**
 * GET /api/v1/paths adds each path's latest rate to the PathView.
 * @typedef {PathView & { throughput?: Rate }} PathWithRate
 */

/**
 * A session as GET /api/v1/sessions sends it: web/schemas.ts SessionSchema also carries the
 * candidate proxy chosen for it, which deps.ts SessionDto does not declare.
 * @typedef {SessionDto & { proxy?: string, sni?: string }} SessionRow
 */

/**
 * GET /api/v1/sessions: a list (older servers) or `{count, sessions}`.
 * @typedef {SessionRow[] | { count: number, sessions: SessionRow[] }} SessionsPayload
 */

/**
 * GET /api/v1/auth/state and the answers of setup, login and logout.
 * @typedef {{ setUp: boolean, loggedIn: boolean, firstBootSecretRequired: boolean, csrf: string }} AuthState
 */

/** @typedef {'active-standby' | 'priority' | 'smallest-delay' | 'load-balancing'} UdpMode */
/** @typedef {'allow' | 'block'} QuicOption */

/**
 * A policy as the page edits it: the API's PolicyDto, plus the UDP steering mode and the QUIC
 * option when the box steers UDP (issue 18; the policy bodies accept them beside the rest).
 * @typedef {PolicyDto & { udpMode?: UdpMode, quic?: QuicOption }} PagePolicy
 */

/**
 * One UDP flow as GET /api/v1/udp lists it: the 5-tuple (protocol UDP), the uplink it leaves
 * through, and its counters.
 * @typedef {{ src: string, sport: number, dst: string, dport: number, uplink: string, bytes: number, packets: number }} UdpFlow
 */

/**
 * GET /api/v1/udp (the contract of issue 18's UDP API; 404 on a box without it).
 * @typedef {{ enabled: boolean, mode?: string, flows: UdpFlow[] }} UdpView
 */

export {};
