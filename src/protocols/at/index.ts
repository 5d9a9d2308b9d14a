export * from './framer.js';
export * from './parsers.js';
