export { status as default } from './views.js';
