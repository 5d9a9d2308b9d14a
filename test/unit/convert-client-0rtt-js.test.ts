// The Convert client's 0-RTT tests again with the JS relay (DUOCELL_RELAY=js: stream.pipe both
// ways instead of the splice thread), which meets the sockets after the reply reader and the
// forwarding left them (paused, a 'readable' listener just removed).
process.env['DUOCELL_RELAY'] = 'js';
await import('./convert-client-0rtt.test.js');
