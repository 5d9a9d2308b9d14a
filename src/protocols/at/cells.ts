/**
 * Serving cell and signal from the vendor commands: the normalised report (cells-report.ts) and
 * one pure parser per vendor command, each in its own file.
 */
export * from './cells-report.js';
export * from './cells-sierra.js';
export * from './cells-simcom.js';
export * from './cells-telit.js';
export * from './cells-quectel.js';
