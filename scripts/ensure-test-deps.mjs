#!/usr/bin/env node
// The tests need Debian's Chromium (the end-to-end tests drive it; never a downloaded browser
// build) and the Vulkan loader (WebGPU tests in Node run Dawn on Chromium's SwiftShader driver).
// If either is missing, install it from Debian's packages when we can (root or passwordless
// sudo), else say how.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasVulkan = () => {
  try {
    return execSync('ldconfig -p', { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return false;
  }
};
const missing = [...(existsSync(path) ? [] : ['chromium']), ...(hasVulkan() ? [] : ['libvulkan1'])];
if (missing.length === 0) process.exit(0);

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
    `\n[ensure-test-deps] Missing: ${missing.join(', ')}. The tests need Debian's packages:\n` +
      `    sudo apt-get install ${missing.join(' ')}\n` +
      '(CHROMIUM_PATH may point at another Chromium/Chrome binary.)\n',
  );
  process.exit(1);
}
console.log(`[ensure-test-deps] installing Debian's ${missing.join(', ')} ...`);
execSync(`${sudo}apt-get update -qq && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`, { stdio: 'inherit' });
if (!existsSync(path)) {
  console.error(`[ensure-test-deps] chromium was installed but ${path} does not exist; set CHROMIUM_PATH.`);
  process.exit(1);
}
