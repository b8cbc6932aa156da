// The compiled S² model against the PyTorch golden cases (library and CLI), against the JavaScript engine on
// generated plans, its structure (standard operators, one backbone copy per crop size) and its refusals.
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileLoaded, compileS2 } from '../src/compile/compile.js';
import { CompiledS2, checkCompiled } from '../src/compile/engine.js';
import { readNpy } from '../src/io/npy.js';
import { readModelFile } from '../src/onnx/file.js';
import { UserError } from '../src/errors.js';
import { AttributeType, DataType, decodeModel, encodeModel, metadataOf, newModel, type GraphProto, type ModelProto } from '../src/onnx/model.js';
import type { S2Options } from '../src/s2/plan.js';
import { assertClose, goldenIndex, goldenOptions, loadGolden, type GoldenS2Case } from './helpers/golden.js';
import { toExternalData } from './helpers/onnx.js';
import { GOLDEN, cli, modelPath, tempDir } from './helpers/util.js';

const cases = goldenIndex.s2;
const load = loadGolden;
/** The compiler detects the prefix count and output shape itself. */
const toOptions = (o: GoldenS2Case['options']) => goldenOptions(o, false);

/** Default-domain operators of opset 17 that a compiled project backbone may contain. */
const STANDARD = new Set([
  'MatMul',
  'Reshape',
  'Transpose',
  'Slice',
  'Concat',
  'ReduceSum',
  'Div',
  'Identity',
  'Add',
  'Mul',
  'Erf',
  'Softmax',
  'Conv',
  'Relu',
  'LayerNormalization',
  'Expand',
  'Shape',
  'Gather',
  'Unsqueeze',
  'Sqrt',
  'ReduceMean',
  'Constant',
  'Split',
  'Flatten',
]);

describe('compiled S² model', () => {
  describe('reproduces the golden cases (library)', () => {
    for (const c of cases) {
      it(c.name, async () => {
        const x = load(c.input);
        // Layout and prefix tokens are left to detection, as compile does for a user.
        const m = await compileS2(modelPath(c.preset), toOptions(c.options), [x.dims[2], x.dims[3]]);
        assert.equal(m.info.outputShape, c.options.outputShape);
        assert.equal(m.info.numPrefixToken, c.options.numPrefixToken);
        const engine = await CompiledS2.fromBytes(m.bytes, c.name);
        try {
          const got = await engine.forward(x);
          const y = load(c.output);
          assert.deepEqual(got.dims, y.dims);
          assertClose(got.data, y.data, c.name);
        } finally {
          await engine.release();
        }
      });
    }
  });

  describe('s2-policy compile, then features on the compiled model, reproduce the golden cases', () => {
    for (const c of cases) {
      it(c.name, () => {
        const dir = tempDir();
        const model = join(dir, 's2.onnx');
        const out = join(dir, 'y.npy');
        const x = load(c.input);
        const o = c.options;
        const args = ['compile', '--model', modelPath(c.preset), '--out', model, '--input-size', `${x.dims[2]}x${x.dims[3]}`];
        if (o.imgSizes) args.push('--img-sizes', o.imgSizes.map((s) => (typeof s === 'number' ? String(s) : `${s[0]}x${s[1]}`)).join(','));
        if (o.scales) args.push('--scales', o.scales.join(','));
        if (o.maxSplitSize !== null) args.push('--max-split-size', String(o.maxSplitSize));
        if (o.splitMode !== null) args.push('--split-mode', o.splitMode);
        if (o.resizeOutputToIdx !== 0) args.push('--resize-output-to-idx', String(o.resizeOutputToIdx));
        const r = cli(args);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /checked against the S² engine/);
        const f = cli(['features', '--model', model, '--input', join(GOLDEN, c.input), '--out', out]);
        assert.equal(f.status, 0, f.stderr);
        const got = readNpy(out);
        const y = load(c.output);
        assert.deepEqual(got.dims, y.dims);
        assertClose(got.data, y.data, c.name);
      });
    }
  });

  describe('equals the JavaScript engine on generated plans', () => {
    it('ConvNet (bchw): any sizes, resize and pad splitting, any pooled scale, batch 1–3', async () => {
      const bb = await OnnxBackbone.load(modelPath('convnet-tiny'));
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              h: fc.integer({ min: 12, max: 40 }),
              w: fc.integer({ min: 12, max: 40 }),
              sizes: fc.array(fc.tuple(fc.integer({ min: 8, max: 90 }), fc.integer({ min: 8, max: 90 })), { minLength: 1, maxLength: 3 }),
              split: fc.integer({ min: 10, max: 40 }),
              mode: fc.constantFrom('resize' as const, 'pad' as const),
              idx: fc.nat(),
              batch: fc.integer({ min: 1, max: 3 }),
            }),
            async (p) => {
              const options: S2Options = {
                imgSizes: p.sizes.map(([a, b]) => [a, b] as const),
                maxSplitSize: p.split,
                splitMode: p.mode,
                resizeOutputToIdx: p.idx % p.sizes.length,
              };
              const m = await compileLoaded(bb, options, [p.h, p.w]);
              const engine = await CompiledS2.fromBytes(m.bytes, 'generated');
              try {
                const r = await checkCompiled(engine, bb, m.info.options, p.batch);
                assert.ok(r.ok, `${JSON.stringify(p)}: max error ${r.maxError} > ${r.bound}`);
              } finally {
                await engine.release();
              }
            },
          ),
          { numRuns: 12, seed: 11 },
        );
      } finally {
        await bb.release();
      }
    });

    it('ViT (bnc, 5 prefix tokens): square and any-shape sizes around the 32-pixel crop', async () => {
      const bb = await OnnxBackbone.load(modelPath('vit-tiny-reg'));
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              h: fc.integer({ min: 16, max: 48 }),
              w: fc.integer({ min: 16, max: 48 }),
              sizes: fc.array(fc.tuple(fc.integer({ min: 16, max: 100 }), fc.integer({ min: 16, max: 100 })), { minLength: 1, maxLength: 3 }),
              mode: fc.constantFrom('resize' as const, 'pad' as const),
              idx: fc.nat(),
              batch: fc.integer({ min: 1, max: 2 }),
            }),
            async (p) => {
              const options: S2Options = {
                imgSizes: p.sizes.map(([a, b]) => [a, b] as const),
                maxSplitSize: 32,
                splitMode: p.mode,
                resizeOutputToIdx: p.idx % p.sizes.length,
              };
              const m = await compileLoaded(bb, options, [p.h, p.w]);
              const engine = await CompiledS2.fromBytes(m.bytes, 'generated');
              try {
                const r = await checkCompiled(engine, bb, m.info.options, p.batch);
                assert.ok(r.ok, `${JSON.stringify(p)}: max error ${r.maxError} > ${r.bound}`);
              } finally {
                await engine.release();
              }
            },
          ),
          { numRuns: 10, seed: 12 },
        );
      } finally {
        await bb.release();
      }
    });
  });

  describe('structure', () => {
    it('standard operators at opset ≥ 17, the backbone once per crop size with its weights stored once', async () => {
      // Scales 0.5, 1, 1.5 of a 32-pixel input: crops of 16, 32 and 24 pixels, three backbone copies.
      const file = modelPath('convnet-tiny');
      const m = await compileS2(file, { scales: [0.5, 1, 1.5] }, [32, 32]);
      const parts = decodeModel(m.bytes, 'compiled');
      const graph = parts.graph as GraphProto;
      assert.ok((parts.opsetImport.find((o) => o.domain === '')?.version ?? 0n) >= 17n);
      for (const n of graph.node) {
        assert.equal(n.domain, '', `${n.opType} is in domain '${n.domain}'`);
        assert.ok(STANDARD.has(n.opType), `non-standard or unexpected operator ${n.opType}`);
      }
      const backbone = readModelFile(file).model.graph as GraphProto;
      const convs = (nodes: { opType: string }[]) => nodes.filter((n) => n.opType === 'Conv').length;
      assert.equal(convs(graph.node), 3 * convs(backbone.node));
      const weights = graph.initializer.filter((i) => i.name.startsWith('backbone/')).length;
      assert.equal(weights, backbone.initializer.length);
      assert.equal(graph.input.length, 1);
      assert.equal(graph.output.length, 1);
      assert.equal(m.info.backboneCalls, 3);
      assert.ok(metadataOf(parts)['s2.compiled'] !== undefined);
    });

    it('drops outputs of the backbone that S² does not use (vit-tiny has a second, pooled output)', async () => {
      const m = await compileS2(modelPath('vit-tiny'), { scales: [1, 2] }, [32, 32]);
      const engine = await CompiledS2.fromBytes(m.bytes, 'vit-tiny');
      try {
        assert.deepEqual(
          engine.model.outputs.map((o) => o.name),
          ['features'],
        );
        assert.deepEqual(engine.model.inputs[0].dims, ['batch', 3, 32, 32]);
      } finally {
        await engine.release();
      }
    });
  });

  describe('command line', () => {
    it('refuses a fixed-batch backbone, --max-batch, S² flags on a compiled model, and a compiled model as backbone', () => {
      const dir = tempDir();
      const out = join(dir, 'c.onnx');
      let r = cli(['compile', '--model', modelPath('vit-tiny-b1'), '--scales', '1,2', '--out', out]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^s2-policy: .*fixed batch of 1; compile needs a dynamic batch axis/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.ok(!existsSync(out), 'no output after a failed compile');
      r = cli(['compile', '--model', modelPath('vit-tiny'), '--scales', '1,2', '--max-batch', '2', '--out', out]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--max-batch cannot be compiled/);
      r = cli(['compile', '--model', modelPath('vit-tiny'), '--out', out]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /one of --scales or --img-sizes is required/);

      r = cli(['compile', '--model', modelPath('vit-tiny'), '--scales', '1,2', '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      const size = statSync(out).size;
      r = cli(['features', '--model', out, '--scales', '1,2', '--input', join(GOLDEN, cases[0].input), '--out', join(dir, 'y.npy')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^s2-policy: features: .* is a compiled S² model .*drop --scales\n$/);
      r = cli(['compile', '--model', out, '--scales', '1,2', '--out', join(dir, 'd.onnx')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /already a compiled S² model/);
      assert.equal(statSync(out).size, size, 'inputs are not modified');
      const copy = join(dir, 'vit.onnx');
      copyFileSync(modelPath('vit-tiny'), copy);
      const before = readFileSync(copy);
      r = cli(['compile', '--model', copy, '--scales', '1,2', '--out', copy]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^s2-policy: --out .*is the input --model/);
      assert.deepEqual(readFileSync(copy), before);
    });

    it('features refuses an input the compiled model does not take, in one line', () => {
      const dir = tempDir();
      const out = join(dir, 'c.onnx');
      // Golden input of 48×64 against a model compiled for 32×32.
      assert.equal(cli(['compile', '--model', modelPath('vit-tiny'), '--scales', '1,2', '--out', out]).status, 0);
      const input = cases.find((c) => c.name === 'vit_anyshape_pad_48x64')?.input as string;
      const r = cli(['features', '--model', out, '--input', join(GOLDEN, input), '--out', join(dir, 'y.npy')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^s2-policy: .*is \[1, 3, 48, 64\]; the compiled model .* takes B×3×32×32\n$/);
      assert.ok(!existsSync(join(dir, 'y.npy')));
    });

    it('inspect describes a compiled model', () => {
      const dir = tempDir();
      const out = join(dir, 'c.onnx');
      assert.equal(cli(['compile', '--model', modelPath('vit-tiny'), '--img-sizes', '32,64,96', '--out', out]).status, 0);
      const r = cli(['inspect', '--model', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /compiled +S² of vit-tiny\.onnx: input image \[batch, 3, 32, 32\] -> features \[batch, 17, 72\]/);
      assert.match(r.stdout, /scale 2 +96×96: 3×3 crops of 32×32/);
      assert.match(r.stdout, /metadata +s2\.num_prefix_tokens = 1/);
    });
  });
});

describe('backbones with external data files', () => {
  it('load, run and compile as the same model with its weights inside', async () => {
    const file = join(tempDir(), 'vit.onnx');
    toExternalData(readFileSync(modelPath('vit-tiny')), file);
    assert.ok(statSync(file).size < 20000, 'weights moved out of the model file');
    const x = load(cases[0].input);
    const ext = await OnnxBackbone.load(file);
    const inside = await OnnxBackbone.load(modelPath('vit-tiny'));
    try {
      // forward() hands the input's buffer to the inference thread: each call gets its own copy.
      const copy = () => ({ dims: x.dims, data: x.data.slice() });
      assert.deepEqual((await ext.forward(copy())).data, (await inside.forward(copy())).data);
    } finally {
      await ext.release();
      await inside.release();
    }
    const a = await compileS2(file, { imgSizes: [32, 64, 96] }, [32, 32]);
    const b = await compileS2(modelPath('vit-tiny'), { imgSizes: [32, 64, 96] }, [32, 32]);
    const ea = await CompiledS2.fromBytes(a.bytes, 'external');
    const eb = await CompiledS2.fromBytes(b.bytes, 'inside');
    try {
      const y = await ea.forward({ dims: x.dims, data: x.data.slice() });
      assert.deepEqual(y.data, (await eb.forward({ dims: x.dims, data: x.data.slice() })).data);
      assertClose(y.data, load(cases[0].output).data, 'external data, compiled');
    } finally {
      await ea.release();
      await eb.release();
    }
    const r = cli(['compile', '--model', file, '--img-sizes', '32,64,96', '--out', join(tempDir(), 'c.onnx')]);
    assert.equal(r.status, 0, r.stderr);
    rmSync(`${file}.data`);
    const missing = cli(['compile', '--model', file, '--img-sizes', '32,64,96', '--out', join(tempDir(), 'c.onnx')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^s2-policy: .*vit\.onnx: external data file .*vit\.onnx\.data of initializer '.*' does not exist\n$/);
  });
});

describe('backbones compile cannot take apart', () => {
  /** convnet-tiny with an edit, written to a temp file. */
  function edited(name: string, edit: (m: ModelProto) => void): string {
    const m = decodeModel(readFileSync(modelPath('convnet-tiny')), 'convnet-tiny');
    edit(m);
    const file = join(tempDir(), name);
    writeFileSync(file, encodeModel(m));
    return file;
  }
  const scalarOut = (name: string) => ({
    name,
    type: {
      value: { case: 'tensorType' as const, value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimValue' as const, value: 1n } }] } } },
    },
  });
  const constant = (out: string, v: number) => ({
    opType: 'Constant',
    output: [out],
    attribute: [{ name: 'value_floats', type: AttributeType.FLOATS, floats: [v] }],
  });

  const refusals: [string, (m: ModelProto) => void, RegExp][] = [
    [
      'a subgraph (If)',
      (m) => {
        const branch = (v: number) => ({ name: `b${v}`, node: [constant(`y${v}`, v)], output: [scalarOut(`y${v}`)] });
        // The additions as typed messages: a graph of their own, then moved into the backbone's.
        const extra = newModel({
          graph: {
            initializer: [{ name: 'cond', dims: [], dataType: DataType.BOOL, rawData: Uint8Array.of(1) }],
            node: [
              {
                opType: 'If',
                name: 'choose',
                input: ['cond'],
                output: ['flag'],
                attribute: [
                  { name: 'then_branch', type: AttributeType.GRAPH, g: branch(1) },
                  { name: 'else_branch', type: AttributeType.GRAPH, g: branch(0) },
                ],
              },
            ],
            output: [scalarOut('flag')],
          },
        }).graph as GraphProto;
        const g = m.graph as GraphProto;
        g.initializer.push(...extra.initializer);
        g.node.push(...extra.node);
        g.output.push(...extra.output);
      },
      /convnet\.onnx: node 'choose' \(If\) has a subgraph, which compile does not support$/,
    ],
    [
      'opset 11',
      (m) => {
        m.opsetImport[0].version = 11n;
      },
      /convnet\.onnx: the backbone uses opset 11; compile needs opset ≥ 13 \(re-export at opset 17\)$/,
    ],
  ];
  for (const [what, edit, message] of refusals) {
    it(`refuses ${what} in one line`, async () => {
      const file = edited('convnet.onnx', edit);
      // onnxruntime takes the model: the refusal is the compiler's.
      const bb = await OnnxBackbone.load(file);
      await bb.release();
      await assert.rejects(compileS2(file, { scales: [1, 2] }, [32, 32]), (e: Error) => e instanceof UserError && message.test(e.message));
    });
  }
});
