// The DHCP lease driver is shared by the AT-only modem (usb0) and the WLAN uplink: drivers/dhcp/lease.ts.
export * from '../dhcp/lease.js';
