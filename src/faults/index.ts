export { faultId, type Fault, type EvidenceRef, type ExitHandoff, type SignatureInfo } from './model.js';
export { FaultWriter, FaultReader, type FaultFilter } from './store.js';
export { listOpenFaults } from './open.js';
export { repairFaultCopies } from './repair.js';
