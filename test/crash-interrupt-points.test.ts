/**
 * Interrupt points: test/crash-points.test.ts stops a worker at every crash point and before every
 * Atomics call of each scenario. V8 also stops a terminated thread at a function's entry and at a
 * loop's back edge (layout.ts, the journal words' comment), which neither marks. Here the worker
 * (workers/interrupt-worker.ts) runs src/ instrumented (bundle() below: a call at every function
 * entry and loop body start, a count of every element store) and stops at each such place that
 * follows a store made since the last place of any kind (the others leave a state crash-points
 * already stops in); the checks after the reclaim are crash-points' own (test/crash-run.ts). An
 * audit of the crash points (2026-12-07) ran every such place of every scenario, some 5,000, with
 * no failure, and showed a call put between listPush's head CAS and its TH_LARGE_HELD store failed
 * here where crash-points passed. INTERRUPT_MAX (default 150) caps the stops a scenario (spread
 * evenly; 2500 tries every one), INTERRUPT_SCENARIOS picks scenarios, INTERRUPT_WHERE=1 names
 * each failing stop's place.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CRASH_SCENARIOS } from '../workers/crash-scenarios.js';
import { DETACH_SCENARIOS } from '../workers/detach-scenario.js';
import { terminateAll } from './remote-heap.js';
import { inPairs, runOnce, type RunVia } from './crash-run.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const ts: any = require('typescript');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const esbuild: any = require('esbuild');

/**
 * The instrumented bundle of the worker: src/ transpiled with a transform that calls
 * globalThis.__ip?.() at every function entry and loop body start, and bumps globalThis.__wc
 * before every element store (a[i] = v, a[i] op= v, a[i]++), so that the worker can tell the
 * places where a terminated thread may stop from the stores between them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function transformer(context: any): any {
  const f = context.factory;
  const ip = () => f.createExpressionStatement(f.createCallChain(f.createPropertyAccessExpression(f.createIdentifier('globalThis'), '__ip'), f.createToken(ts.SyntaxKind.QuestionDotToken), undefined, []));
  const wc = () => f.createAssignment(f.createPropertyAccessExpression(f.createIdentifier('globalThis'), '__wc'),
    f.createBinaryExpression(f.createPropertyAccessExpression(f.createIdentifier('globalThis'), '__wc'), ts.SyntaxKind.PlusToken, f.createNumericLiteral(1)));
  const isLoop = (n: any): boolean => ts.isForStatement(n) || ts.isWhileStatement(n) || ts.isDoStatement(n) || ts.isForOfStatement(n) || ts.isForInStatement(n);
  const withIp = (body: any): any => ts.isBlock(body) ? f.updateBlock(body, [ip(), ...body.statements]) : f.createBlock([ip(), body], true);
  const visit = (node: any): any => {
    node = ts.visitEachChild(node, visit, context);
    if ((ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isConstructorDeclaration(node) || ts.isGetAccessor(node)) && node.body && ts.isBlock(node.body)) {
      const body = withIp(node.body);
      if (ts.isFunctionDeclaration(node)) return f.updateFunctionDeclaration(node, node.modifiers, node.asteriskToken, node.name, node.typeParameters, node.parameters, node.type, body);
      if (ts.isFunctionExpression(node)) return f.updateFunctionExpression(node, node.modifiers, node.asteriskToken, node.name, node.typeParameters, node.parameters, node.type, body);
      if (ts.isMethodDeclaration(node)) return f.updateMethodDeclaration(node, node.modifiers, node.asteriskToken, node.name, node.questionToken, node.typeParameters, node.parameters, node.type, body);
      if (ts.isArrowFunction(node)) return f.updateArrowFunction(node, node.modifiers, node.typeParameters, node.parameters, node.type, node.equalsGreaterThanToken, body);
      if (ts.isConstructorDeclaration(node)) return f.updateConstructorDeclaration(node, node.modifiers, node.parameters, body);
      if (ts.isGetAccessor(node)) return f.updateGetAccessorDeclaration(node, node.modifiers, node.name, node.parameters, node.type, body);
    }
    if (isLoop(node)) {
      if (ts.isForStatement(node)) return f.updateForStatement(node, node.initializer, node.condition, node.incrementor, withIp(node.statement));
      if (ts.isWhileStatement(node)) return f.updateWhileStatement(node, node.expression, withIp(node.statement));
      if (ts.isDoStatement(node)) return f.updateDoStatement(node, withIp(node.statement), node.expression);
      if (ts.isForOfStatement(node)) return f.updateForOfStatement(node, node.awaitModifier, node.initializer, node.expression, withIp(node.statement));
      if (ts.isForInStatement(node)) return f.updateForInStatement(node, node.initializer, node.expression, withIp(node.statement));
    }
    if (ts.isBinaryExpression(node) && node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && node.operatorToken.kind <= ts.SyntaxKind.LastAssignment && ts.isElementAccessExpression(node.left)) {
      return f.createParenthesizedExpression(f.createCommaListExpression([wc(), node]));
    }
    if ((ts.isPostfixUnaryExpression(node) || ts.isPrefixUnaryExpression(node)) && (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken) && ts.isElementAccessExpression(node.operand)) {
      return f.createParenthesizedExpression(f.createCommaListExpression([wc(), node]));
    }
    return node;
  };
  return (sf: any) => ts.visitNode(sf, visit);
}

async function bundle(outfile: string): Promise<void> {
  await esbuild.build({
    entryPoints: [fileURLToPath(new URL('../workers/interrupt-worker.ts', import.meta.url))],
    bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile, packages: 'external', sourcemap: 'inline',
    plugins: [{
      name: 'ip',
      setup(b: any) {
        b.onLoad({ filter: /\/src\/[\w-]+\.ts$/ }, (args: { path: string }) => {
          const src = readFileSync(args.path, 'utf8');
          const out = ts.transpileModule(src, { fileName: args.path, compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: false, inlineSourceMap: true, inlineSources: true }, transformers: { before: [transformer] } });
          return { contents: out.outputText, loader: 'js' };
        });
      },
    }],
  });
}

const BUNDLE_DIR = join(tmpdir(), 'sabmalloc-interrupt-points');
mkdirSync(BUNDLE_DIR, { recursive: true });
const BUNDLE = join(BUNDLE_DIR, `interrupt-worker-${process.pid}.mjs`);
const MAX = Number(process.env['INTERRUPT_MAX'] ?? 150);
const ONLY = process.env['INTERRUPT_SCENARIOS']?.split(',');
const VIA: RunVia = {
  worker: { filename: BUNDLE, execArgv: ['--enable-source-maps'] },
  data: { where: process.env['INTERRUPT_WHERE'] === '1' },
  scenarios: DETACH_SCENARIOS,
  mayEndFree: true,
};

afterAll(terminateAll);

let bundled: Promise<void> | undefined;

describe('interrupt points (function entries, loop back edges) after a plain store: a thread stopped there is reclaimed cleanly', () => {
  it.each([...Object.keys(CRASH_SCENARIOS), ...Object.keys(DETACH_SCENARIOS)].filter((s) => ONLY === undefined || ONLY.includes(s)))('%s', async (name) => {
    bundled ??= bundle(BUNDLE);
    await bundled;
    const counted = await runOnce(name, 0, false, false, VIA);
    expect(counted.failures, `${name}: the run without a stop`).toEqual([]);
    const total = counted.counts![0]!;
    expect(total, `${name}: interrupt points after a store`).toBeGreaterThan(0);
    const stops = total <= MAX ? Array.from({ length: total }, (_, k) => k + 1) : Array.from({ length: MAX }, (_, k) => 1 + Math.floor((k * total) / MAX));
    const results = await inPairs(stops.map((n) => () => runOnce(name, n, false, false, VIA)));
    const failed = results.flatMap((r, k) => r.failures.map((f) => `stop at interrupt point ${stops[k]}${r.where ? ' ' + r.where.split('\n').slice(2, 6).map((l) => l.trim()).join(' < ') : ''}: ${f}`));
    const stopped = results.filter((r) => r.stoppedAt === 'interrupt point').length;
    console.log(`${name}: ${total} interrupt points after a store, ${stops.length} tried, ${failed.length} failures`);
    expect(stopped, 'every run stopped at its interrupt point').toBe(stops.length);
    expect(failed.slice(0, 20), `${failed.length} of ${stops.length} stops failed`).toEqual([]);
  }, 600_000);
});
