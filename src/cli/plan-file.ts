/** A channel plan read from a derivation record: derive-student's derivation.json (report.units). */
import { readFileSync } from 'node:fs';
import { planFromUnits, type ChannelPlan } from '../derive/fade';

export function readPlanFile(path: string): ChannelPlan {
  let record: { report?: { units?: Parameters<typeof planFromUnits>[0] } };
  try {
    record = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the channel plan ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(record.report?.units)) throw new Error(`${path} is not a derivation record (derive-student's derivation.json): it has no report.units.`);
  try {
    return planFromUnits(record.report.units);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}
