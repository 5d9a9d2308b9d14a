export { udp as default } from './views.js';
