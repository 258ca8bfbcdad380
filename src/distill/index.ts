/**
 * The distillation methods, importable from one path in Node, a worker or the CLI:
 *   import { fgfi, fgd, pfi, softLabelKd, headMimic, rankMimicking, ld, createMethod, combine } from './distill';
 * Each method is a pure function of named inputs ([N,H,W,C] tensors per level, assignments)
 * returning { loss, terms, maps? }; the registry lists them and builds their connectors.
 */
export * from './types';
export * from './readback';
export * from './connectors';
export * from './gc-block';
export * from './fgfi';
export * from './fgd';
export * from './pfi';
export * from './soft-label-kd';
export * from './head-mimic';
export * from './rank-mimicking';
export * from './ld';
export * from './registry';
