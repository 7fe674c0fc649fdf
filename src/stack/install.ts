/**
 * Installs what the local stack runs, once per machine: tools built or fetched
 * land in the per-user cache (keyed by version), so every clone, CI's included,
 * reuses them; Debian packages go through apt-get.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StackError } from './service.js';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const VERSITYGW_VERSION = 'v1.8.0';
export const DYNAMODB_LOCAL_VERSION = '3.3.1';

const ASSETS = path.join(path.dirname(new URL(import.meta.url).pathname), 'assets');

export type Progress = (message: string) => void;

/** Runs a command to completion; rejects with its output when it fails. */
export function runCommand(
  part: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; logFile?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (options.logFile) fs.appendFileSync(options.logFile, chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', (err) => reject(new StackError(part, `could not run ${command}: ${err.message}`, options.logFile)));
    child.once('close', (code) => {
      if (code === 0) resolve(output);
      else {
        const tail = output.trimEnd().split('\n').slice(-20).join('\n');
        reject(new StackError(part, `\`${command} ${args.join(' ')}\` exited with ${code}:\n${tail}`, options.logFile));
      }
    });
  });
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, command)));
}

/**
 * Builds a Go command from its module at a pinned version into the cache,
 * unless an earlier run already did. The build goes to a scratch folder that is
 * renamed into place, so an interrupted build never leaves a broken binary.
 */
async function ensureGoBinary(
  part: string,
  cacheDir: string,
  name: string,
  modulePath: string,
  version: string,
  progress: Progress,
  logFile: string,
): Promise<string> {
  const dir = path.join(cacheDir, `${name}-${version}`);
  const binary = path.join(dir, name);
  if (fs.existsSync(binary)) return binary;
  if (!onPath('go')) throw new StackError(part, `Go is needed to build ${name} ${version}, and \`go\` is not on PATH. Install Go, then run again.`);
  progress(`${part}: building ${name} ${version} from source with Go (first run on this machine only; a few minutes)`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(cacheDir, `.${name}-build-`));
  try {
    await runCommand(part, 'go', ['install', `${modulePath}@${version}`], {
      env: { CGO_ENABLED: '0', GOBIN: scratch, GOFLAGS: '-trimpath' },
      logFile,
    });
    try {
      fs.renameSync(scratch, dir);
    } catch (err) {
      if (!fs.existsSync(binary)) throw err; // another run finished first: keep its build
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return binary;
}

export function ensureTemporalCli(cacheDir: string, progress: Progress, logFile: string): Promise<string> {
  const override = process.env.FERRY_TEMPORAL_BIN;
  if (override) return Promise.resolve(override);
  return ensureGoBinary('temporal', cacheDir, 'temporal', 'github.com/temporalio/cli/cmd/temporal', TEMPORAL_CLI_VERSION, progress, logFile);
}

export function ensureVersitygw(cacheDir: string, progress: Progress, logFile: string): Promise<string> {
  return ensureGoBinary('s3', cacheDir, 'versitygw', 'github.com/versity/versitygw/cmd/versitygw', VERSITYGW_VERSION, progress, logFile);
}

/**
 * DynamoDB Local from Maven Central with its native sqlite4java libraries, plus
 * a small launcher that binds it to loopback (DynamoDB Local has no bind flag).
 * Returns the folder holding `lib/` and the compiled launcher.
 */
export async function ensureDynamoDbLocal(cacheDir: string, progress: Progress, logFile: string): Promise<string> {
  const dir = path.join(cacheDir, `dynamodb-local-${DYNAMODB_LOCAL_VERSION}`);
  if (fs.existsSync(path.join(dir, 'LoopbackDynamoDBLocal.class'))) return dir;
  for (const tool of ['java', 'javac', 'mvn']) {
    if (!onPath(tool)) throw new StackError('dynamodb', `DynamoDB Local needs Java 17+ and Maven; \`${tool}\` is not on PATH. Install a JDK and Maven, then run again.`);
  }
  progress(`dynamodb: fetching DynamoDB Local ${DYNAMODB_LOCAL_VERSION} with Maven (first run on this machine only)`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(cacheDir, '.dynamodb-local-'));
  try {
    const pom = fs.readFileSync(path.join(ASSETS, 'dynamodb-local.pom.xml'), 'utf8').replace('@VERSION@', DYNAMODB_LOCAL_VERSION);
    fs.writeFileSync(path.join(scratch, 'pom.xml'), pom);
    await runCommand('dynamodb', 'mvn', ['-q', '-B', 'dependency:copy-dependencies', '-DoutputDirectory=lib', '-Dmdep.stripVersion=true'], {
      cwd: scratch,
      logFile,
    });
    fs.copyFileSync(path.join(ASSETS, 'LoopbackDynamoDBLocal.java'), path.join(scratch, 'LoopbackDynamoDBLocal.java'));
    await runCommand('dynamodb', 'javac', ['-cp', 'lib/*', '-d', '.', 'LoopbackDynamoDBLocal.java'], { cwd: scratch, logFile });
    try {
      fs.renameSync(scratch, dir);
    } catch (err) {
      if (!fs.existsSync(path.join(dir, 'LoopbackDynamoDBLocal.class'))) throw err;
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return dir;
}

/** Installs Debian packages when one of the commands they provide is missing. */
export async function ensureDebianPackages(
  part: string,
  commands: string[],
  packages: string[],
  progress: Progress,
  logFile: string,
): Promise<void> {
  const withSbin = (c: string) => onPath(c) || fs.existsSync(path.join('/usr/sbin', c));
  if (commands.every(withSbin)) return;
  if (!onPath('apt-get')) {
    throw new StackError(part, `${commands.join(', ')} missing and apt-get is not available: install ${packages.join(' ')} with your package manager.`);
  }
  const asRoot = process.getuid?.() === 0;
  if (!asRoot && !onPath('sudo')) {
    throw new StackError(part, `${commands.join(', ')} missing: run \`apt-get install -y ${packages.join(' ')}\` as root, then run again.`);
  }
  const apt = (args: string[]) =>
    asRoot ? runCommand(part, 'apt-get', args, { env: { DEBIAN_FRONTEND: 'noninteractive' }, logFile }) : runCommand(part, 'sudo', ['-n', 'apt-get', ...args], { env: { DEBIAN_FRONTEND: 'noninteractive' }, logFile });
  progress(`${part}: installing ${packages.join(' ')} from Debian's packages (first run on this machine only)`);
  await apt(['update']);
  await apt(['install', '-y', '--no-install-recommends', ...packages]);
}
