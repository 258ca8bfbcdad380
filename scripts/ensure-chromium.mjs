#!/usr/bin/env node
// The end-to-end tests drive Debian's Chromium (never a downloaded browser build). If it is
// missing, install it from Debian's packages when we can (root or passwordless sudo), else say how.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (existsSync(path)) process.exit(0);

const can = (cmd) => {
  try {
    execSync(cmd, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = isRoot ? '' : can('sudo -n true') ? 'sudo -n ' : null;

if (sudo === null || !can('command -v apt-get')) {
  console.error(
    `\n[ensure-chromium] No Chromium at ${path}. The end-to-end tests need Debian's chromium package:\n` +
      '    sudo apt-get install chromium\n' +
      'or point CHROMIUM_PATH at another Chromium/Chrome binary.\n',
  );
  process.exit(1);
}
console.log(`[ensure-chromium] ${path} is missing; installing Debian's chromium ...`);
execSync(`${sudo}apt-get update -qq && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium`, { stdio: 'inherit' });
if (!existsSync(path)) {
  console.error(`[ensure-chromium] chromium was installed but ${path} does not exist; set CHROMIUM_PATH.`);
  process.exit(1);
}
