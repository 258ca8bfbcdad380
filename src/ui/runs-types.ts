/** The run history's types as the page sees them (from the worker's Lab). */
export type { RunsList as RecordRunsList, RunRecord as RunRecordFull, RunSummary, ModelCardData } from '../worker/lab';
