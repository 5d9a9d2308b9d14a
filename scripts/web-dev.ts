import { createFakeDeps } from '../test/helpers/fake-deps.js';
import { createWebServer } from '../src/web/server.js';

/**
 * The page on fake data, for developing it stand-alone:
 *   npm run build && node dist/scripts/web-dev.js
 * Serves http://127.0.0.1:8080 (DUOCELL_WEB_PORT to change). main.ts wires the real services.
 */
const port = Number(process.env.DUOCELL_WEB_PORT ?? 8080);
const deps = createFakeDeps();
const server = await createWebServer(deps, {
  listen: [{ host: '127.0.0.1', port }],
  ...(process.env.DUOCELL_FIRST_BOOT_SECRET !== undefined ? { firstBootSecret: process.env.DUOCELL_FIRST_BOOT_SECRET } : {}),
});
process.stdout.write(`duocell web (fake data) on http://127.0.0.1:${server.addresses()[0]!.port}\n`);
const stop = (): void => {
  deps.stop();
  void server.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
