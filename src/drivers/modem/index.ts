export * from './transport.js';
export * from './at.js';
export * from './qmi.js';
export * from './manager.js';
export * from './board.js';
export * from './netif.js';
