export * from './attrs.js';
export * from './message.js';
