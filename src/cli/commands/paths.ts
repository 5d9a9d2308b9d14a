export { paths as default } from './views.js';
