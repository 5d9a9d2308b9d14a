export * from './service.js';
export * from './steer.js';
