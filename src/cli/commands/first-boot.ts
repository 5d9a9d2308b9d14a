import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { EXIT, parseFlags, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';

const help = `usage: duocell first-boot [--state-dir DIR] [--json]

Show this box's first-boot values, made at the first start (src/wiring/first-boot.ts): the web
page's set-up secret, the bearer token of /metrics, and the SHA-256 fingerprint of the page's
HTTPS certificate. They are read from the state directory (root or the duocell user only).

  --state-dir DIR     state directory (default $DUOCELL_STATE_DIR or /var/lib/duocell)
  --json              one JSON document: { setupSecret, metricsToken, fingerprint } (null: none)`;

function readTrimmed(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new DuocellError('DC_USAGE', `cannot read ${file}: ${(e as Error).message}${code === 'EACCES' ? ' (run as root)' : ''}`);
  }
}

const firstBoot: Command = {
  name: 'first-boot',
  summary: "show the box's set-up secret, /metrics token and HTTPS certificate fingerprint",
  help,
  async run(args, ctx) {
    const { flags, unknown, positional } = parseFlags(args, { 'state-dir': 'string', json: 'boolean' });
    if (unknown.length > 0 || positional.length > 0) throw new DuocellError('DC_USAGE', `unexpected ${unknown[0] ?? positional[0]}\n${help}`);
    const dir = (flags['state-dir'] as string | undefined) ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell';
    const cert = readTrimmed(path.join(dir, 'tls', 'cert.pem'));
    const out = {
      setupSecret: readTrimmed(path.join(dir, 'first-boot', 'setup-secret')),
      metricsToken: readTrimmed(path.join(dir, 'first-boot', 'metrics-token')),
      fingerprint: cert === null ? null : new X509Certificate(cert).fingerprint256,
    };
    if (ctx.json || flags.json === true) ctx.io.out(JSON.stringify(out));
    else {
      ctx.io.out(`set-up secret:          ${out.setupSecret ?? '(none)'}`);
      ctx.io.out(`/metrics token:         ${out.metricsToken ?? '(none: /metrics is open)'}`);
      ctx.io.out(`certificate SHA-256:    ${out.fingerprint ?? '(no HTTPS)'}`);
    }
    return EXIT.OK;
  },
};
export default firstBoot;
