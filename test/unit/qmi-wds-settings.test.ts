import t from 'tap';
import { isDuocellError } from '../../src/core/errors.js';
import { decodeBytes, decodeWdsCurrentSettings, encodeResponse, type Tlv } from '../../src/protocols/qmi/index.js';

/**
 * The typed WDS Get Current Settings decoder against responses built by the generic encoder from
 * libqmi's TLV descriptions (so both sides agree on ids and layouts), hand-made bytes with a
 * comment per field, malformed TLVs, and a fuzz loop.
 */

const a = { client: 1, tid: 7 };

t.test('IPv4 session: address, mask → prefix, gateway, DNS, MTU, family', async (t) => {
  const m = decodeBytes(
    encodeResponse('wds.getCurrentSettings', a, {
      apn_name: 'internet',
      ipv4_address: '10.64.12.7',
      ipv4_gateway_address: '10.64.12.6',
      ipv4_gateway_subnet_mask: '255.255.255.252',
      ipv4_primary_dns_address: '10.64.0.53',
      ipv4_secondary_dns_address: '10.64.1.53',
      mtu: 1430,
      ip_family: 4,
    }),
  );
  t.same(decodeWdsCurrentSettings(m.frame.tlvs), {
    apn: 'internet',
    ipFamily: 4,
    mtu: 1430,
    ipv4: { address: '10.64.12.7', prefixLength: 30, gateway: '10.64.12.6', dns: ['10.64.0.53', '10.64.1.53'] },
  });
});

t.test('IPv6 session: address/prefix, gateway, DNS', async (t) => {
  const m = decodeBytes(
    encodeResponse('wds.getCurrentSettings', a, {
      ipv6_address: { address: '2001:db8:64:1::7', prefix_length: 64 },
      ipv6_gateway_address: { address: '2001:db8:64:1::1', prefix_length: 64 },
      ipv6_primary_dns_address: '2001:db8:64::53',
      mtu: 1500,
      ip_family: 6,
    }),
  );
  t.same(decodeWdsCurrentSettings(m.frame.tlvs), {
    ipFamily: 6,
    mtu: 1500,
    ipv6: { address: '2001:db8:64:1::7', prefixLength: 64, gateway: '2001:db8:64:1::1', dns: ['2001:db8:64::53'] },
  });
});

t.test('hand-made bytes: libqmi IPv4 TLVs are little-endian u32', async (t) => {
  const tlvs: Tlv[] = [
    // 0x1E IPv4 Address 10.21.0.2 = 0x0A150002, little-endian on the wire
    { type: 0x1e, value: Buffer.from([0x02, 0x00, 0x15, 0x0a]) },
    // 0x21 Subnet Mask 255.255.255.0 = 0xFFFFFF00
    { type: 0x21, value: Buffer.from([0x00, 0xff, 0xff, 0xff]) },
    // 0x20 Gateway 10.21.0.1
    { type: 0x20, value: Buffer.from([0x01, 0x00, 0x15, 0x0a]) },
    // 0x15 primary DNS 0.0.0.0: "none"
    { type: 0x15, value: Buffer.alloc(4) },
  ];
  t.same(decodeWdsCurrentSettings(tlvs), { ipv4: { address: '10.21.0.2', prefixLength: 24, gateway: '10.21.0.1', dns: [] } });
  t.same(decodeWdsCurrentSettings([]), {}, 'nothing up: no family');
  t.same(decodeWdsCurrentSettings([{ type: 0x1e, value: Buffer.alloc(4) }]), {}, '0.0.0.0 is no address');
});

t.test('malformed TLVs are refused with a code naming the TLV', async (t) => {
  const bad: [Tlv[], string, RegExp][] = [
    [[{ type: 0x1e, value: Buffer.from([1, 2, 3]) }], 'DC_QMI_TLV_OVERFLOW', /0x1e \(IPv4 Address\) has 3 bytes, expected 4/],
    [[{ type: 0x25, value: Buffer.alloc(16) }], 'DC_QMI_TLV_OVERFLOW', /IPv6 Address/],
    [[{ type: 0x1e, value: Buffer.from([2, 0, 21, 10]) }, { type: 0x21, value: Buffer.from([0x00, 0xff, 0x00, 0xff]) }], 'DC_QMI_FRAME_INVALID', /not contiguous/],
    [[{ type: 0x25, value: Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([129])]) }], 'DC_QMI_FRAME_INVALID', /prefix length 129/],
    [[{ type: 0x29, value: Buffer.from([10, 0, 0, 0]) }], 'DC_QMI_FRAME_INVALID', /MTU 10/],
    [[{ type: 0x2b, value: Buffer.from([5]) }], 'DC_QMI_FRAME_INVALID', /IP family 5/],
  ];
  for (const [tlvs, code, msg] of bad) {
    t.throws(() => decodeWdsCurrentSettings(tlvs), { code, message: msg }, `${code} ${msg}`);
  }
});

t.test('fuzz: random TLV sets decode or fail with a QMI code, never anything else (20k)', async (t) => {
  let seed = 0x5eed;
  // mulberry32
  const rnd = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
  const ids = [0x14, 0x15, 0x16, 0x1e, 0x20, 0x21, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2b, 0x10, 0x99];
  const sizes = [0, 1, 3, 4, 5, 16, 17, 18, 40];
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    const tlvs: Tlv[] = [];
    for (let k = rnd(8); k > 0; k--) {
      const n = sizes[rnd(sizes.length)]!;
      const v = Buffer.alloc(n);
      for (let j = 0; j < n; j++) v[j] = rnd(4) === 0 ? 0xff : rnd(256);
      tlvs.push({ type: ids[rnd(ids.length)]!, value: v });
    }
    try {
      const s = decodeWdsCurrentSettings(tlvs);
      if (s.ipv4 && !(s.ipv4.prefixLength >= 0 && s.ipv4.prefixLength <= 32)) t.fail(`bad v4 prefix ${s.ipv4.prefixLength}`);
      if (s.ipv6 && !(s.ipv6.prefixLength >= 0 && s.ipv6.prefixLength <= 128)) t.fail(`bad v6 prefix ${s.ipv6.prefixLength}`);
      ok++;
    } catch (e) {
      if (!isDuocellError(e, 'DC_QMI_TLV_OVERFLOW') && !isDuocellError(e, 'DC_QMI_FRAME_INVALID')) {
        t.fail(`unexpected ${(e as Error).message}`);
        break;
      }
      refused++;
    }
  }
  t.ok(ok > 100 && refused > 100, `both outcomes seen (${ok} decoded, ${refused} refused)`);
});
