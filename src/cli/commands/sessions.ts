export { sessions as default } from './views.js';
