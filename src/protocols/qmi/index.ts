export * from './frame.js';
export * from './schema.js';
export * from './messages.js';
export * from './codec.js';
export * from './wds-settings.js';
export * from './replies.js';
