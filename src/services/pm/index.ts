export * from './service.js';
export * from './steer/index.js';
