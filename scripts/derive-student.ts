/**
 * Creates the lab's default student next to the teacher in models/ (runs at `npm install`, after
 * the teacher is fetched): NanoDet-g with half its CSP blocks removed and its head cut to the 20
 * VOC classes, initialised with the teacher's weights. Prints its size against the teacher's.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import { artifactsToFiles } from '../src/graph/export';
import { readManifest, readModelArtifacts } from '../src/models/load-node';
import { deriveDefaultStudent } from '../src/models/student';
import { startWasm } from '../src/cli/wasm-threads';

/** Bump when the derivation changes, so an existing student is rebuilt at the next install. */
const DERIVATION = 2;

const models = resolve(import.meta.dirname, '..', 'models');
const studentManifestPath = join(models, 'nanodet-student.manifest.json');
const studentModel = 'nanodet-student.json';

function upToDate(): boolean {
  if (!existsSync(studentManifestPath) || !existsSync(join(models, studentModel)) || !existsSync(join(models, 'nanodet-student.bin'))) return false;
  try {
    return JSON.parse(readFileSync(studentManifestPath, 'utf8')).derivation === DERIVATION;
  } catch {
    return false;
  }
}

async function main() {
  if (upToDate() && !process.argv.includes('--force')) {
    console.log('[derive-student] models/nanodet-student.* present');
    return;
  }
  await startWasm();
  const { manifest, modelPath } = readManifest(join(models, 'nanodet.manifest.json'));
  const student = await deriveDefaultStudent(readModelArtifacts(modelPath), manifest, studentModel);
  const { modelJson, weights } = artifactsToFiles(student.artifacts, 'nanodet-student.bin');
  writeFileSync(join(models, 'nanodet-student.bin'), weights);
  writeFileSync(join(models, studentModel), modelJson);
  writeFileSync(studentManifestPath, `${JSON.stringify({ ...student.manifest, derivation: DERIVATION }, null, 2)}\n`);
  const t = student.teacherProfile;
  const s = student.manifest.profile!;
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  console.log(
    `[derive-student] wrote models/nanodet-student.* (${student.manifest.name}):\n` +
      `  CSP blocks per stage kept/removed: ${student.stages.map((st) => `${st.kept}/${st.removed}`).join(', ')}\n` +
      `  parameters ${s.parameters.toLocaleString('en')} vs teacher ${t.parameters.toLocaleString('en')} (${pct(s.parameters, t.parameters)})\n` +
      `  MACs at ${manifest.input.size}x${manifest.input.size}: ${(s.macs / 1e9).toFixed(3)} G vs teacher ${(t.macs / 1e9).toFixed(3)} G (${pct(s.macs, t.macs)})`,
  );
}

main().catch((error) => {
  console.error(`\n[derive-student] could not derive the default student: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
