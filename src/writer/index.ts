export { Writer, type WriterOptions } from './writer.js';
