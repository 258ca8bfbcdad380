/**
 * `npm run evaluate -- --model <manifest or model.json> --data <voc> --split <name>`: VOC mAP
 * (11-point and all-point), COCO AP and the per-class table of one model, without training.
 * Every argument is checked before the model is loaded or anything is written.
 */
import { startWasm } from './wasm-threads';
import { fidelityLine } from '../eval/fidelity';
import { EVALUATE_USAGE, evaluationTable, headSwapLine, parseEvaluateCli, runEvaluation } from './evaluate-core';

async function main() {
  let options;
  try {
    options = parseEvaluateCli(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  if (options.help) {
    console.log(EVALUATE_USAGE);
    return;
  }
  await startWasm(options.threads);
  const tty = process.stderr.isTTY;
  const { report, name, inputSize, fidelity, headSwap } = await runEvaluation(options, (done, total) => {
    if (tty) process.stderr.write(`\r\x1b[Kevaluating ${done}/${total}`);
  });
  if (tty) process.stderr.write('\n');
  console.log(`${name} on ${options.split} (${report.counts.images} images, ${inputSize}x${inputSize}), in %:`);
  console.log(evaluationTable(report));
  if (fidelity) console.log(`\nAgreement with the teacher (${options.teacherPath}), ${fidelityLine(fidelity)}.`);
  if (headSwap) console.log(headSwapLine(headSwap));
  if (options.jsonPath) console.log(`\nWrote ${options.jsonPath}`);
}

main().catch((error) => {
  console.error(`evaluate failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
