/**
 * A stale pid file (the stack killed, the machine rebooted) may name a pid that
 * now belongs to an unrelated process: `ferry stack down/up/status` must not
 * take it for the part, and must never signal its process group.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serviceFiles, serviceState, stopService } from '../src/stack/service.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleeper(cwd: string): number {
  const child = spawn('sleep', ['60'], { cwd, detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

test('a pid file naming an unrelated process: the part is not running, and stop leaves that process alone', async () => {
  const stackDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stack-'));
  const { dir, pidFile } = serviceFiles(stackDir, 'part');
  fs.mkdirSync(dir, { recursive: true });
  const stranger = sleeper(os.tmpdir());
  try {
    fs.writeFileSync(pidFile, String(stranger));
    const state = await serviceState(stackDir, 'part', async () => false);
    assert.equal(state.running, false, 'an unrelated process is not the part');
    fs.writeFileSync(pidFile, String(stranger));
    assert.equal(await stopService(stackDir, 'part'), false, 'nothing of the part was running');
    assert.ok(alive(stranger), 'the unrelated process was not signalled');
    assert.equal(fs.existsSync(pidFile), false, 'the stale pid file is gone');
  } finally {
    process.kill(stranger, 'SIGKILL');
    fs.rmSync(stackDir, { recursive: true, force: true });
  }
});

test('the part’s own process (working in its folder) is running, and stop stops it', async () => {
  const stackDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stack-'));
  const { dir, pidFile } = serviceFiles(stackDir, 'part');
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const own = sleeper(path.join(dir, 'data'));
  try {
    fs.writeFileSync(pidFile, String(own));
    assert.equal((await serviceState(stackDir, 'part', async () => true)).running, true);
    assert.equal(await stopService(stackDir, 'part'), true);
    for (let i = 0; i < 50 && alive(own); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(own), false, 'the part was stopped');
  } finally {
    if (alive(own)) process.kill(own, 'SIGKILL');
    fs.rmSync(stackDir, { recursive: true, force: true });
  }
});
