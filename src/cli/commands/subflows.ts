export { subflows as default } from './views.js';
